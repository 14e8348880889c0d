//! kv: remember/recall/forget strings in the host key-value store
//! (capability `store:kv`). Proves a namespace outlives instances.
const ex = @import("exoclaw");

const description =
    \\{"name":"kv","kind":"tool",
    \\"description":"Remember and recall short strings by key.",
    \\"tools":[
    \\{"name":"remember","description":"Store a value under a key (replacing any previous value).",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":256},"value":{"type":"string","minLength":1}},"required":["key","value"]}},
    \\{"name":"recall","description":"Return the value stored under a key.",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":256}},"required":["key"]}},
    \\{"name":"forget","description":"Delete the value stored under a key.",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":256}},"required":["key"]}}
    \\],
    \\"capabilities":["store:kv"]}
;

const max_key = 256;
const max_value = 64 * 1024;

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
    const args = ex.json.get(in, "input") orelse "{}";

    const is_remember = ex.eql(name, "remember");
    if (!is_remember and !ex.eql(name, "recall") and !ex.eql(name, "forget"))
        return ex.failParts(&.{ "unknown tool: ", name });

    const key = (try ex.json.getString(args, "key")) orelse
        return ex.toolResult("input needs a string field: key", true);
    if (key.len == 0 or key.len > max_key)
        return ex.toolResult("key must be 1 to 256 bytes", true);

    if (is_remember) {
        const value = (try ex.json.getString(args, "value")) orelse
            return ex.toolResult("input needs a string field: value", true);
        // Offset 0 means "absent" in the kv ABI, so an empty value cannot be stored.
        if (value.len == 0) return ex.toolResult("value must not be empty (use forget to delete a key)", true);
        if (value.len > max_value) return ex.toolResult("value is larger than 64 KiB", true);
        ex.kvSet(key, value);
        return ex.toolResult("ok", false);
    }
    if (ex.eql(name, "recall")) {
        const value = (try ex.kvGet(key)) orelse
            return ex.toolResult(try ex.concat(&.{ "nothing stored under key: ", key }), true);
        return ex.toolResult(value, false);
    }
    ex.kvDelete(key);
    return ex.toolResult("ok", false);
}
