//! echo: the smallest useful tool plugin — it returns the text it is given.
//! (The deliberately misbehaving tools the tests use live with the tests,
//! in tests/wasm_modules/testtools.)
const ex = @import("exoclaw");

const description =
    \\{"name":"echo","kind":"tool",
    \\"description":"Echoes text back.",
    \\"tools":[
    \\{"name":"echo","description":"Return the given text unchanged.",
    \\ "input_schema":{"type":"object","properties":{"text":{"type":"string","description":"Text to echo back"}},"required":["text"]}}
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

fn handle() !void {
    const in = try ex.input();
    if (!ex.json.valid(in)) return ex.fail("input is not valid JSON");
    const name = (try ex.json.getString(in, "name")) orelse return ex.fail("missing field: name");
    if (!ex.eql(name, "echo")) return ex.failParts(&.{ "unknown tool: ", name });
    const args = ex.json.get(in, "input") orelse "{}";
    const text = (try ex.json.getString(args, "text")) orelse
        return ex.toolResult("input needs a string field: text", true);
    return ex.toolResult(text, false);
}
