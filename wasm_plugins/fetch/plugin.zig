//! fetch: HTTP GET through the host's HTTP (Extism's `http_request` ABI).
//! Only hosts granted by `http:HOST` are reachable, and a redirect is
//! followed only to a granted host: any other host makes the call fail.
const ex = @import("exoclaw");

const description =
    \\{"name":"fetch","kind":"tool",
    \\"description":"Fetch a URL with HTTP GET.",
    \\"tools":[
    \\{"name":"fetch","description":"HTTP GET a URL and return the first 4 KiB of the response body.",
    \\ "input_schema":{"type":"object","properties":{"url":{"type":"string","description":"http:// or https:// URL"}},"required":["url"]}}
    \\],
    \\"capabilities":["http:*"]}
;

const max_body = 4096;

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
    if (!ex.eql(name, "fetch")) return ex.failParts(&.{ "unknown tool: ", name });

    const url = (try ex.json.getString(args, "url")) orelse
        return ex.toolResult("input needs a string field: url", true);
    if (!startsWith(url, "http://") and !startsWith(url, "https://"))
        return ex.toolResult("url must start with http:// or https://", true);

    // A host that is not granted (or a redirect to one) makes the host fail the whole call.
    const resp = try ex.http("GET", url, null, null);
    const body = ex.utf8Prefix(resp.body, max_body);
    if (resp.status >= 200 and resp.status < 400) return ex.toolResult(body, false);
    var msg = ex.Buf{};
    try msg.append("HTTP ");
    try msg.int(resp.status);
    try msg.append(": ");
    try msg.append(body);
    return ex.toolResult(msg.items(), true);
}

fn startsWith(s: []const u8, prefix: []const u8) bool {
    return s.len >= prefix.len and ex.eql(s[0..prefix.len], prefix);
}
