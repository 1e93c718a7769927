# Sourced by bench/run.sh and bench/profile.sh: builds the benchmark's two
# small C++ tools into BUILD/bench when missing or older than their source,
# and sets $flood and $ceiling to their paths.
#   fcgi-flood   (fcgi_flood.cpp): requests straight to a FastCGI socket; no dependencies
#   fcgi-ceiling (fcgi_ceiling.cpp): the FastCGI hop's responder; libfcgi and fcgi++
# usage: build_tools BUILD_DIR
build_tools() {
    local here cxx=${CXX:-g++}
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    mkdir -p "$1/bench"
    flood=$1/bench/fcgi-flood
    ceiling=$1/bench/fcgi-ceiling
    if [[ ! -x $flood || $here/fcgi_flood.cpp -nt $flood ]]; then
        "$cxx" -std=c++20 -O2 -Wall -Wextra -Werror -o "$flood" "$here/fcgi_flood.cpp"
    fi
    if [[ ! -x $ceiling || $here/fcgi_ceiling.cpp -nt $ceiling ]]; then
        "$cxx" -std=c++20 -O2 -Wall -Wextra -Werror -o "$ceiling" "$here/fcgi_ceiling.cpp" -lfcgi++ -lfcgi -pthread
    fi
}
