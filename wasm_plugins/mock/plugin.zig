//! mock: a channel adapter for tests and local experiments.
//! Incoming body: {"user": str, "chat": str, "text": str, "id": str};
//! replies are POSTed as {"chat", "text"} to config `reply_url`.
const ex = @import("exoclaw");
const json = ex.json;

const description =
    \\{"name":"mock","kind":"channel",
    \\"description":"Mock channel: JSON webhook {user, chat, text, id}; replies POSTed to config reply_url.",
    \\"tools":[],
    \\"capabilities":[]}
;

export fn describe() i32 {
    ex.output(description);
    return 0;
}

export fn parse_incoming() i32 {
    return ex.run(parseIncoming);
}

export fn format_outgoing() i32 {
    return ex.run(formatOutgoing);
}

/// The payload: `body` is the raw request text (a JSON string); an object is
/// accepted too.
fn payload(in: []const u8) ![]const u8 {
    if (!json.valid(in)) return ex.fail("input is not valid JSON");
    const raw = json.get(in, "body") orelse return ex.fail("missing field: body");
    const body = if (json.isString(raw)) try json.string(raw) else raw;
    if (!json.valid(body) or !json.isObject(body)) return ex.fail("body is not a JSON object");
    return body;
}

/// A required string field: a clear reason when absent or of the wrong type.
fn requiredString(obj: []const u8, comptime key: []const u8) ![]u8 {
    const raw = json.get(obj, key) orelse return ex.fail("missing field: " ++ key);
    if (json.isNull(raw)) return ex.fail("missing field: " ++ key);
    if (!json.isString(raw)) return ex.fail("field must be a string: " ++ key);
    return try json.string(raw);
}

fn optionalString(obj: []const u8, comptime key: []const u8) !?[]u8 {
    const raw = json.get(obj, key) orelse return null;
    if (json.isNull(raw)) return null;
    if (!json.isString(raw)) return ex.fail("field must be a string: " ++ key);
    return try json.string(raw);
}

fn parseIncoming() !void {
    const body = try payload(try ex.input());
    const user = try requiredString(body, "user");
    const text = try requiredString(body, "text");
    const chat = (try optionalString(body, "chat")) orelse "main";
    const peer = if (chat.len == 0) "main" else chat;
    const id = try optionalString(body, "id");

    var out = ex.Buf{};
    try out.append("{\"channel\":\"mock\",\"account\":");
    try out.string(user);
    try out.append(",\"peer\":");
    try out.string(peer);
    try out.append(",\"content\":");
    try out.string(text);
    if (id) |v| {
        try out.append(",\"message_id\":");
        try out.string(v);
    }
    try out.append(",\"reply_to\":{\"chat\":");
    try out.string(peer);
    try out.append("}}");
    ex.output(out.items());
}

fn formatOutgoing() !void {
    const in = try ex.input();
    if (!json.valid(in)) return ex.fail("input is not valid JSON");
    const content = try requiredString(in, "content");
    const reply_to = json.get(in, "reply_to") orelse "{}";
    const chat = (try optionalString(reply_to, "chat")) orelse "main";
    const url = (try ex.config("reply_url")) orelse return ex.fail("missing config: reply_url");

    var out = ex.Buf{};
    try out.append("{\"method\":\"POST\",\"url\":");
    try out.string(url);
    try out.append(",\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"chat\":");
    try out.string(chat);
    try out.append(",\"text\":");
    try out.string(content);
    try out.append("}}");
    ex.output(out.items());
}
