//! testtools: TEST ONLY. Tools that misbehave on purpose, so the tests can
//! prove the sandbox (fresh instance per call, traps of every kind, errors,
//! timeouts, output and memory caps, HTTP grants, the caller's identity).
//! Never configure this module for a real agent.
const ex = @import("exoclaw");

const description =
    \\{"name":"testtools","kind":"tool",
    \\"description":"Test only: tools that misbehave on purpose.",
    \\"tools":[
    \\{"name":"counter","description":"Increment a module global and return it (always 1: every call gets a fresh instance).",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"trap","description":"Execute a WebAssembly unreachable instruction.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"fail","description":"Fail with the error 'deliberate failure'.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"spin","description":"Loop forever (stopped by the host's timeout).",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"big","description":"Return n bytes of content.",
    \\ "input_schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0}},"required":["n"]}},
    \\{"name":"bomb","description":"Grow memory until it fails, then trap.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"recurse","description":"Recurse without end (stack overflow).",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"whoami","description":"Return the caller object the host passed, verbatim.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"http","description":"HTTP request; content is 'STATUS BODY'.",
    \\ "input_schema":{"type":"object","properties":{"url":{"type":"string"},"method":{"type":"string"}},"required":["url"]}}
    \\],
    \\"capabilities":[]}
;

export fn describe() i32 {
    ex.output(description);
    return 0;
}

export fn handle_tool_call() i32 {
    return ex.run(handle);
}

var counter: i64 = 0;
var spin_sink: u64 = 0;

fn handle() !void {
    const in = try ex.input();
    if (!ex.json.valid(in)) return ex.fail("input is not valid JSON");
    const name = (try ex.json.getString(in, "name")) orelse return ex.fail("missing field: name");
    const args = ex.json.get(in, "input") orelse "{}";

    if (ex.eql(name, "counter")) {
        counter += 1;
        var b = ex.Buf{};
        try b.int(counter);
        return ex.toolResult(b.items(), false);
    }
    if (ex.eql(name, "trap")) @trap();
    if (ex.eql(name, "fail")) return ex.fail("deliberate failure");
    if (ex.eql(name, "spin")) {
        const p: *volatile u64 = &spin_sink;
        while (true) p.* +%= 1;
    }
    if (ex.eql(name, "big")) {
        const n = ex.json.getInt(args, "n") orelse return ex.toolResult("input needs an integer field: n", true);
        if (n < 0 or n > 1 << 30) return ex.toolResult("n must be between 0 and 2^30", true);
        const content = try ex.alloc(@intCast(n));
        @memset(content, 'x');
        return ex.toolResult(content, false);
    }
    if (ex.eql(name, "bomb")) {
        while (@wasmMemoryGrow(0, 16) >= 0) {}
        @trap();
    }
    if (ex.eql(name, "recurse")) {
        const p: *volatile u64 = &spin_sink;
        p.* = deep(p.*);
        return ex.toolResult("unreachable: the stack is endless?", true);
    }
    if (ex.eql(name, "whoami")) {
        return ex.toolResult(ex.json.get(in, "caller") orelse "null", false);
    }
    if (ex.eql(name, "http")) {
        const url = (try ex.json.getString(args, "url")) orelse return ex.toolResult("input needs a string field: url", true);
        const method = (try ex.json.getString(args, "method")) orelse "GET";
        const resp = try ex.http(method, url, null, null);
        var b = ex.Buf{};
        try b.int(resp.status);
        try b.append(" ");
        try b.append(ex.utf8Prefix(resp.body, 4096));
        return ex.toolResult(b.items(), false);
    }
    return ex.failParts(&.{ "unknown tool: ", name });
}

/// Unbounded recursion the optimiser cannot turn into a loop: every frame
/// keeps a volatile local alive across the call.
fn deep(n: u64) u64 {
    var frame: [16]u64 = undefined;
    const v: *volatile [16]u64 = &frame;
    v[0] = n;
    const r = deep(v[0] +% 1);
    return r +% v[1];
}
