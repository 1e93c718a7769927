-- wrk script: each connection waits the given milliseconds (the argument
-- after "--") after an answer before its next request, so 32 connections
-- offer a fixed, unsaturating load. bench/bench.py picks the pause from the
-- scenario's own throughput; wrk's latency figures exclude the pause.

local pause_ms = 1

function init(args)
    pause_ms = tonumber(args[1]) or pause_ms
end

function delay()
    return pause_ms
end
