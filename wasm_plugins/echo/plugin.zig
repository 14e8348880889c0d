//! echo: the smallest useful tool plugin, plus a few deliberately
//! misbehaving tools the tests and the gateway use to prove the sandbox
//! (fresh instance per call, traps, errors, timeouts, output and memory caps).
const ex = @import("exoclaw");

const description =
    \\{"name":"echo","kind":"tool",
    \\"description":"Echoes text back. Also carries test-only tools (counter, trap, fail, spin, big, bomb) that misbehave on purpose.",
    \\"tools":[
    \\{"name":"echo","description":"Return the given text unchanged.",
    \\ "input_schema":{"type":"object","properties":{"text":{"type":"string","description":"Text to echo back"}},"required":["text"]}},
    \\{"name":"counter","description":"Test only: increment a module global and return it (always 1: every call gets a fresh instance).",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"trap","description":"Test only: execute a WebAssembly unreachable instruction.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"fail","description":"Test only: fail with the error 'deliberate failure'.",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"spin","description":"Test only: loop forever (stopped by the host's timeout).",
    \\ "input_schema":{"type":"object","properties":{}}},
    \\{"name":"big","description":"Test only: return n bytes of content.",
    \\ "input_schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0}},"required":["n"]}},
    \\{"name":"bomb","description":"Test only: grow memory until it fails, then trap.",
    \\ "input_schema":{"type":"object","properties":{}}}
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

    if (ex.eql(name, "echo")) {
        const text = (try ex.json.getString(args, "text")) orelse
            return ex.toolResult("input needs a string field: text", true);
        return ex.toolResult(text, false);
    }
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
    return ex.failParts(&.{ "unknown tool: ", name });
}
