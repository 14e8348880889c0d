//! kv: remember/recall/forget strings in the host key-value store
//! (capability `store:kv`). Each person's memory is their own: every key is
//! stored under a prefix made from the caller's `person` (the host says who
//! calls, in the input's `caller`), so nobody can recall what another
//! person remembered. Proves a namespace outlives instances.
const std = @import("std");
const ex = @import("exoclaw");

const description =
    \\{"name":"kv","kind":"tool",
    \\"description":"Remember and recall short strings by key; each person has their own.",
    \\"tools":[
    \\{"name":"remember","description":"Store a value under a key (replacing any previous value).",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":220},"value":{"type":"string","minLength":1}},"required":["key","value"]}},
    \\{"name":"recall","description":"Return the value stored under a key.",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":220}},"required":["key"]}},
    \\{"name":"forget","description":"Delete the value stored under a key.",
    \\ "input_schema":{"type":"object","properties":{"key":{"type":"string","maxLength":220}},"required":["key"]}}
    \\],
    \\"capabilities":["store:kv"]}
;

/// A stored key is "p:" + 32 hex digits of the person + ":" + the key: 35
/// bytes of prefix, so a key may have 220 bytes (the host takes 256).
const max_key = 220;
const max_value = 64 * 1024;

export fn describe() i32 {
    ex.output(description);
    return 0;
}

export fn handle_tool_call() i32 {
    return ex.run(handle);
}

/// The key as stored: the caller's own space, then their key. The person
/// is hashed (SHA-256, first 128 bits) so the prefix has a fixed length
/// whatever the account id is.
fn personalKey(person: []const u8, key: []const u8) ![]u8 {
    var digest: [32]u8 = undefined;
    std.crypto.hash.sha2.Sha256.hash(person, &digest, .{});
    const hex = std.fmt.bytesToHex(digest[0..16].*, .lower);
    return ex.concat(&.{ "p:", &hex, ":", key });
}

fn handle() !void {
    const in = try ex.input();
    if (!ex.json.valid(in)) return ex.fail("input is not valid JSON");
    const name = (try ex.json.getString(in, "name")) orelse return ex.fail("missing field: name");
    const args = ex.json.get(in, "input") orelse "{}";

    const is_remember = ex.eql(name, "remember");
    if (!is_remember and !ex.eql(name, "recall") and !ex.eql(name, "forget"))
        return ex.failParts(&.{ "unknown tool: ", name });

    const caller = ex.json.get(in, "caller") orelse
        return ex.fail("the host did not say who is calling (no caller): kv keeps each person's memory apart");
    const person = (try ex.json.getString(caller, "person")) orelse
        return ex.fail("the caller has no person");
    if (person.len == 0) return ex.fail("the caller has no person");

    const key = (try ex.json.getString(args, "key")) orelse
        return ex.toolResult("input needs a string field: key", true);
    if (key.len == 0 or key.len > max_key)
        return ex.toolResult("key must be 1 to 220 bytes", true);
    const stored = try personalKey(person, key);

    if (is_remember) {
        const value = (try ex.json.getString(args, "value")) orelse
            return ex.toolResult("input needs a string field: value", true);
        // Offset 0 means "absent" in the kv ABI, so an empty value cannot be stored.
        if (value.len == 0) return ex.toolResult("value must not be empty (use forget to delete a key)", true);
        if (value.len > max_value) return ex.toolResult("value is larger than 64 KiB", true);
        ex.kvSet(stored, value);
        return ex.toolResult("ok", false);
    }
    if (ex.eql(name, "recall")) {
        const value = (try ex.kvGet(stored)) orelse
            return ex.toolResult(try ex.concat(&.{ "nothing stored under key: ", key }), true);
        return ex.toolResult(value, false);
    }
    ex.kvDelete(stored);
    return ex.toolResult("ok", false);
}
