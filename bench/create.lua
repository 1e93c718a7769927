-- wrk script: POST to each path given after "--" in turn (bench/bench.py
-- passes /animals/{animal} for every animal, or the ceiling's one path), with
-- the Content-Length: 0 that curl and browsers send for an empty POST.
-- No response() callback: wrk then skips handing each answer to Lua.

local paths = {}
local n = 0

function init(args)
    for i, p in ipairs(args) do
        paths[i] = wrk.format("POST", p, { ["Content-Length"] = "0" })
    end
end

function request()
    n = n % #paths + 1
    return paths[n]
end
