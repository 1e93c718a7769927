-- wrk script (LuaJIT, Lua 5.1): one survey start for every 20 polls, as a client that starts
-- a survey and then polls it would. Arguments after "--": the path to poll
-- until this thread has started a survey of its own, then the paths to POST
-- to in turn. The id comes back in the Location header of the 202; later
-- polls go there. (Per wrk thread, not per connection: wrk's Lua state is
-- per thread, and the responses are not tied to their requests.)
-- The ceiling run passes its own two paths; its answers have no Location,
-- so it keeps polling the first path.

local poll_path
local creates = {}
local n = 0

function init(args)
    poll_path = args[1]
    for i = 2, #args do
        creates[#creates + 1] = wrk.format("POST", args[i], { ["Content-Length"] = "0" })
    end
end

function request()
    n = n + 1
    if n % 21 == 1 then
        return creates[math.floor(n / 21) % #creates + 1]
    end
    return wrk.format("GET", poll_path)
end

function response(status, headers, body)
    local location = headers["Location"]
    if location then
        -- nginx may have made it absolute (absolute_redirect).
        poll_path = location:match("^https?://[^/]+(/.*)$") or location
    end
end
