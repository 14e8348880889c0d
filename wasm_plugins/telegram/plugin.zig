//! telegram: a channel adapter for the Telegram Bot API (webhook mode).
//! parse_incoming takes an Update; format_outgoing makes a sendMessage call
//! with the `{{secret:bot_token}}` placeholder the host fills in.
const ex = @import("exoclaw");
const json = ex.json;

const description =
    \\{"name":"telegram","kind":"channel",
    \\"description":"Telegram Bot API channel (webhook updates in, sendMessage out).",
    \\"tools":[],
    \\"capabilities":["http:api.telegram.org"],
    \\"verify":{"header":"X-Telegram-Bot-Api-Secret-Token","secret":"webhook_secret"}}
;

const default_api_base = "https://api.telegram.org";

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

fn parseIncoming() !void {
    const in = try ex.input();
    if (!json.valid(in)) return ex.fail("input is not valid JSON");
    const raw = json.get(in, "body") orelse return ex.fail("missing field: body");
    const update = if (json.isString(raw)) try json.string(raw) else raw;
    if (!json.valid(update) or !json.isObject(update)) return ex.fail("body is not a JSON object");

    const update_id_raw = json.get(update, "update_id") orelse return ex.fail("missing field: update_id");
    if (!json.isNumber(update_id_raw)) return ex.fail("update_id must be a number");
    const update_id = (try json.idText(update_id_raw)) orelse return ex.fail("update_id must be a number");

    // Only text messages are routed; everything else is acknowledged and ignored.
    const message = json.get(update, "message") orelse return ignore();
    if (!json.isObject(message)) return ignore();
    const text = (try json.getString(message, "text")) orelse return ignore();

    const chat_id_raw = json.path(message, &.{ "chat", "id" }) orelse
        return ex.fail("missing field: message.chat.id");
    const chat_id = (try json.idText(chat_id_raw)) orelse return ex.fail("message.chat.id must be a number");
    // The sender: from.id, else the chat posting on its behalf, else the chat.
    const from_raw = json.path(message, &.{ "from", "id" }) orelse
        json.path(message, &.{ "sender_chat", "id" }) orelse chat_id_raw;
    const account = (try json.idText(from_raw)) orelse chat_id;

    var out = ex.Buf{};
    try out.append("{\"channel\":\"telegram\",\"account\":");
    try out.string(account);
    try out.append(",\"peer\":");
    try out.string(chat_id);
    try out.append(",\"content\":");
    try out.string(text);
    try out.append(",\"message_id\":");
    try out.string(update_id);
    try out.append(",\"reply_to\":{\"chat_id\":");
    try out.append(json.trim(chat_id_raw)); // verbatim: negative and 64-bit ids stay exact
    try out.append("}}");
    ex.output(out.items());
}

fn ignore() void {
    ex.output("{\"ignore\":true}");
}

fn formatOutgoing() !void {
    const in = try ex.input();
    if (!json.valid(in)) return ex.fail("input is not valid JSON");
    const content_raw = json.get(in, "content") orelse return ex.fail("missing field: content");
    if (!json.isString(content_raw)) return ex.fail("field must be a string: content");
    const reply_to = json.get(in, "reply_to") orelse return ex.fail("missing field: reply_to");
    const chat_id = json.get(reply_to, "chat_id") orelse return ex.fail("missing field: reply_to.chat_id");
    if (!json.isNumber(chat_id) and !json.isString(chat_id))
        return ex.fail("reply_to.chat_id must be a number or a string");

    var base: []const u8 = (try ex.config("api_base")) orelse default_api_base;
    if (base.len == 0) base = default_api_base;
    while (base.len > 0 and base[base.len - 1] == '/') base = base[0 .. base.len - 1];

    var out = ex.Buf{};
    try out.append("{\"method\":\"POST\",\"url\":");
    try out.string(try ex.concat(&.{ base, "/bot{{secret:bot_token}}/sendMessage" }));
    try out.append(",\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"chat_id\":");
    try out.append(json.trim(chat_id));
    try out.append(",\"text\":");
    try out.string(try json.string(content_raw));
    try out.append("}}");
    ex.output(out.items());
}
