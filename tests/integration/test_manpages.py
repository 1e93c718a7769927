"""The man pages against the code they describe, so they cannot drift:

- every `key = value` of the shipped zookeeper.conf (which lists every key
  with its default; the unit tests check it parses to the parser's defaults)
  is documented in docs/man/zookeeper.conf.5 with the same default, and every
  key documented there is in the shipped file;
- every key the parser itself accepts (the "expected ..." list of its
  unknown-key error, asked section by section) is in the man page;
- every numeric key's range, as the parser reports it for an out-of-range
  value, is stated in that key's paragraph;
- every section of the shipped file is named in the man page;
- every option `zookeeper-fcgi --help` lists is in docs/man/zookeeper-fcgi.8,
  and every option that page documents is in --help.

A new key (say [store] backend) fails here, by name, until it is documented.
Keys are documented as `.TP` then `.BR "key = " default` under `.SS [section]`.
"""

import os
import re
import subprocess

from harness import TestFailure, check
import registry
from registry import test

registry.module_backends(__name__, only="sqlite", why="the manual pages against the parser: no stack, once is enough")

WORD_SECTIONS = {"animals", "verbs", "adjectives", "adverbs"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def man_path(env, name):
    return os.path.join(env.repo, "docs", "man", name)


def shipped_keys(text):
    """{(section, key): value} of the key = value lines, and the sections."""
    keys, sections, section = {}, [], None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            sections.append(section)
            continue
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            keys[(section, key)] = value
    return keys, sections


def unroff(text):
    """The roff escapes the pages use, as plain text."""
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(ti", "~").replace("\\(dq", '"').replace("\\ ", " ")


def man_keys(text):
    """{(section, key): (default, paragraph text)} from the KEYS section."""
    keys, section, current = {}, None, None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH") or line.startswith(".SS"):
            current = None
            m = re.match(r'\.SS\s+"?\[([A-Za-z0-9_]+)\]"?\s*$', line)
            section = m.group(1) if m else None
            continue
        if line.startswith(".TP"):
            current = None
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            # An empty default (url, worker_name) is the key alone: .BR "url = "
            m = re.match(r'\.BR\s+"([A-Za-z0-9_]+) = "(?:\s+(\S+))?\s*$', nxt)
            if m and section:
                current = (section, m.group(1))
                keys[current] = [unroff(m.group(2) or ""), ""]
            continue
        if current:
            keys[current][1] += " " + unroff(line)
    return {k: (v[0], v[1]) for k, v in keys.items()}


def fmt(keys):
    return ", ".join("[%s] %s" % k for k in sorted(keys))


def check_config(env, text):
    path = os.path.join(env.work_dir, "manpages-probe.conf")
    os.makedirs(env.work_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([env.bin, "--check-config", path], capture_output=True, timeout=5)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def numbers(text):
    out = set()
    for tok in re.findall(r"[0-9][0-9.e+]*", text):
        try:
            out.add(float(tok.rstrip(".")))
        except ValueError:
            pass
    return out


@test
def manpage_conf_keys_match_shipped_config(env):
    conf, sections = shipped_keys(read(os.path.join(env.repo, "zookeeper.conf")))
    page = read(man_path(env, "zookeeper.conf.5"))
    documented = man_keys(page)
    check(conf, "no key = value lines found in the shipped zookeeper.conf")
    missing = set(conf) - set(documented)
    check(not missing, "keys of the shipped zookeeper.conf missing from docs/man/zookeeper.conf.5 "
          "(add a .TP / .BR \"key = \" default paragraph under .SS [section]): " + fmt(missing))
    extra = set(documented) - set(conf)
    check(not extra, "keys in docs/man/zookeeper.conf.5 that the shipped zookeeper.conf does not have: " + fmt(extra))
    wrong = ["[%s] %s: man page says %s, zookeeper.conf says %s" % (k + (documented[k][0], conf[k]))
             for k in sorted(conf) if documented[k][0] != conf[k]]
    check(not wrong, "defaults differ:\n      " + "\n      ".join(wrong))
    plain = unroff(page)
    unnamed = [s for s in sections if "[%s]" % s not in plain]
    check(not unnamed, "sections of the shipped zookeeper.conf not named in zookeeper.conf.5: " + ", ".join(unnamed))
    env.note("%d keys in %d sections documented with their defaults" % (len(conf), len(sections)))


@test
def manpage_conf_keys_match_parser(env):
    """Asks the parser which keys each section takes, and each numeric
    key's range, through its own error messages."""
    base = read(os.path.join(env.repo, "zookeeper.conf"))
    conf, sections = shipped_keys(base)
    documented = man_keys(read(man_path(env, "zookeeper.conf.5")))
    # The shipped config with `line` in `section`, replacing the line that
    # sets the same key there (a key set twice is an error of its own).
    def with_line(section, line):
        key = line.split("=", 1)[0].strip()
        out, inserted, current = [], False, None
        for raw in base.splitlines():
            s = raw.strip()
            if s.startswith("["):
                if current == section and not inserted:
                    out.append(line)
                    inserted = True
                current = s.strip("[]").strip()
            elif current == section and "=" in s and s.split("=", 1)[0].strip() == key:
                continue
            out.append(raw)
        if not inserted:
            out.append(line if current == section else "[%s]\n%s" % (section, line))
        return "\n".join(out) + "\n"

    parser_keys = set()
    for section in sections:
        if section in WORD_SECTIONS:
            continue
        rc, out = check_config(env, with_line(section, "zz_no_such_key = 1"))
        check(rc == 2, "an unknown key in [%s] was accepted (exit %d): %s" % (section, rc, out.strip()))
        m = re.search(r"\(expected ([^)]*)\)", out)
        check(m, "the parser's unknown-key error for [%s] no longer lists the expected keys, which this "
              "test reads: %s" % (section, out.strip()))
        parser_keys |= {(section, k.strip()) for k in m.group(1).split(",")}
    missing = parser_keys - set(documented)
    check(not missing, "keys the parser accepts but docs/man/zookeeper.conf.5 does not document: " + fmt(missing))
    unknown = set(documented) - parser_keys
    check(not unknown, "keys documented in zookeeper.conf.5 that the parser rejects: " + fmt(unknown))

    ranges = 0
    for key in sorted(parser_keys):
        rc, out = check_config(env, with_line(key[0], "%s = 99999999999999" % key[1]))
        m = re.search(r"out of range \(([-0-9.e+]+) to ([-0-9.e+]+)\)", out)
        if not m:
            continue  # not a number (log_level, dir): the paragraph names the choices
        lo, hi = float(m.group(1)), float(m.group(2))
        stated = numbers(documented[key][1])
        check(lo in stated and hi in stated, "[%s] %s: the parser's range is %s to %s, its paragraph in "
              "zookeeper.conf.5 says:%s" % (key + (m.group(1), m.group(2), documented[key][1])))
        ranges += 1
    env.note("%d keys accepted by the parser, all documented; %d numeric ranges match" % (len(parser_keys), ranges))


@test
def manpage_fcgi_options_match_help(env):
    r = subprocess.run([env.bin, "--help"], capture_output=True, timeout=5)
    check(r.returncode == 0, "--help exited %d" % r.returncode)
    help_opts = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", r.stdout.decode()))
    check(help_opts, "no options found in --help")
    page = read(man_path(env, "zookeeper-fcgi.8"))
    plain = unroff(page)
    # The options the page documents: the .TP items of its OPTIONS section.
    options = page.split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0] if ".SH OPTIONS" in page else ""
    check(options, "zookeeper-fcgi.8 has no OPTIONS section")
    items = re.findall(r"\.TP\n(.*)", options)
    documented = set()
    for item in items:
        documented |= set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", unroff(item)))
    missing = help_opts - documented
    check(not missing, "options in zookeeper-fcgi --help without an item in zookeeper-fcgi.8's OPTIONS: "
          + ", ".join(sorted(missing)))
    extra = documented - help_opts
    check(not extra, "options documented in zookeeper-fcgi.8 that --help does not list: " + ", ".join(sorted(extra)))
    for heading in ("SIGNALS", "EXIT STATUS", "FILES", "ENVIRONMENT"):
        check(".SH " + heading in page or '.SH "%s"' % heading in page, "zookeeper-fcgi.8 has no %s section" % heading)
    for status in re.findall(r"\b([0-9]) (?:clean stop|runtime failure|bad usage)", r.stdout.decode()):
        check(re.search(r"\.TP\n\.B %s\n" % status, page), "exit status %s of --help not in EXIT STATUS" % status)
    env.note("%d options documented: %s" % (len(help_opts), " ".join(sorted(help_opts))))
    del plain


@test
def manpage_versions_match_version_file(env):
    """The pages' headers name the release: bumping VERSION means looking at them."""
    with open(os.path.join(env.repo, "VERSION")) as f:
        version = f.read().strip()
    for name in ("zookeeper-fcgi.8", "zookeeper.conf.5"):
        th = [l for l in read(man_path(env, name)).splitlines() if l.startswith(".TH ")]
        check(th and '"zookeeper %s"' % version in th[0],
              "%s: .TH line %s does not say \"zookeeper %s\" (VERSION)" % (name, th[:1], version))
