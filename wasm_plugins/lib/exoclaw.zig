//! Exoclaw plugin helper for Zig (wasm32-freestanding, Extism kernel ABI).
//!
//! A tiny, dependency-free stand-in for the Extism Zig PDK: the Extism kernel
//! imports are declared here directly, plus what an Exoclaw plugin needs
//! (input, output, error, config, a minimal JSON reader/writer, the host
//! key-value store and Extism HTTP).
//!
//! Zig only imports a host function into the module when code that calls it
//! is compiled in, so a plugin that never calls `kvGet` does not import
//! `kv_get` (the gateway refuses plugins importing host functions they were
//! not granted).
//!
//! Memory: every call runs in a fresh instance, so the helper uses a bump
//! allocator over `memory.grow` and never frees plugin memory. Extism
//! memory blocks handed out by the kernel/host are freed after being copied.
//!
//! Typical export:
//!
//!     export fn handle_tool_call() i32 {
//!         return ex.run(handle);
//!     }
//!     fn handle() !void { ... try ex.toolResult("text", false); }

const std = @import("std");

// ---------------------------------------------------------------------------
// Host imports
// ---------------------------------------------------------------------------

/// Extism kernel (module `extism:host/env`). Offsets and lengths are u64
/// (i64 on the wasm side); u8 arguments/results travel as i32.
pub const kernel = struct {
    pub extern "extism:host/env" fn input_length() u64;
    pub extern "extism:host/env" fn input_load_u8(offset: u64) u8;
    pub extern "extism:host/env" fn input_load_u64(offset: u64) u64;
    pub extern "extism:host/env" fn alloc(length: u64) u64;
    pub extern "extism:host/env" fn free(offset: u64) void;
    pub extern "extism:host/env" fn length(offset: u64) u64;
    pub extern "extism:host/env" fn load_u8(offset: u64) u8;
    pub extern "extism:host/env" fn load_u64(offset: u64) u64;
    pub extern "extism:host/env" fn store_u8(offset: u64, value: u8) void;
    pub extern "extism:host/env" fn store_u64(offset: u64, value: u64) void;
    pub extern "extism:host/env" fn output_set(offset: u64, length: u64) void;
    pub extern "extism:host/env" fn error_set(offset: u64) void;
    pub extern "extism:host/env" fn config_get(key_offset: u64) u64;
    pub extern "extism:host/env" fn http_request(request_offset: u64, body_offset: u64) u64;
    pub extern "extism:host/env" fn http_status_code() i32;
    pub extern "extism:host/env" fn log_info(offset: u64) void;
    pub extern "extism:host/env" fn log_error(offset: u64) void;
};

/// Exoclaw host functions (module `extism:host/user`), present only when the
/// plugin is granted a `store:NAME` capability. All arguments and results are
/// Extism memory offsets of UTF-8 strings; `kv_get` returns 0 when absent.
pub const host = struct {
    pub extern "extism:host/user" fn kv_get(key_offset: u64) u64;
    pub extern "extism:host/user" fn kv_set(key_offset: u64, value_offset: u64) void;
    pub extern "extism:host/user" fn kv_delete(key_offset: u64) void;
};

pub const Error = error{ OutOfMemory, Failed, BadJson };

// ---------------------------------------------------------------------------
// Plugin memory: a bump allocator (instances live for one call)
// ---------------------------------------------------------------------------

const page_size: usize = 65536;
var heap_next: usize = 0;
var heap_end: usize = 0;
var last_alloc: usize = 0; // start of the most recent allocation (for in-place growth)
const max_heap_end: usize = 0xffff_0000; // 4 GiB - 64 KiB: heap_end never wraps

fn reserve(end: usize) Error!void {
    if (heap_end == 0) {
        heap_end = @wasmMemorySize(0) * page_size;
        heap_next = heap_end;
    }
    if (end <= heap_end) return;
    if (end > max_heap_end) return error.OutOfMemory;
    const pages = (end - heap_end) / page_size + 1;
    if (@wasmMemoryGrow(0, pages) < 0) return error.OutOfMemory;
    heap_end += pages * page_size;
}

/// Allocate `n` bytes (8-byte aligned). Never freed: the instance is dropped
/// after the call.
pub fn alloc(n: usize) Error![]u8 {
    if (heap_end == 0) try reserve(0);
    const start = (heap_next + 7) & ~@as(usize, 7);
    if (n > std.math.maxInt(usize) - start) return error.OutOfMemory;
    try reserve(start + n);
    heap_next = start + n;
    last_alloc = start;
    const p: [*]u8 = @ptrFromInt(start);
    return p[0..n];
}

/// Grow `old` to `n` bytes, in place when it is the latest allocation.
pub fn realloc(old: []u8, n: usize) Error![]u8 {
    if (n <= old.len) return old[0..n];
    if (old.len > 0 and @intFromPtr(old.ptr) == last_alloc and last_alloc + old.len == heap_next) {
        if (n > std.math.maxInt(usize) - last_alloc) return error.OutOfMemory;
        try reserve(last_alloc + n);
        heap_next = last_alloc + n;
        return old.ptr[0..n];
    }
    const fresh = try alloc(n);
    @memcpy(fresh[0..old.len], old);
    return fresh;
}

pub fn dupe(s: []const u8) Error![]u8 {
    const d = try alloc(s.len);
    @memcpy(d, s);
    return d;
}

/// Concatenate pieces into a new buffer.
pub fn concat(parts: []const []const u8) Error![]u8 {
    var n: usize = 0;
    for (parts) |p| n += p.len;
    const d = try alloc(n);
    var i: usize = 0;
    for (parts) |p| {
        @memcpy(d[i .. i + p.len], p);
        i += p.len;
    }
    return d;
}

pub fn eql(a: []const u8, b: []const u8) bool {
    return std.mem.eql(u8, a, b);
}

// ---------------------------------------------------------------------------
// Extism memory transfer
// ---------------------------------------------------------------------------

fn toUsize(n: u64) Error!usize {
    if (n > std.math.maxInt(usize)) return error.OutOfMemory;
    return @intCast(n);
}

/// Copy bytes into a new Extism memory block; returns its offset (0 for an
/// empty slice, which the kernel and Exoclaw hosts read as "").
pub fn toExtism(bytes: []const u8) u64 {
    if (bytes.len == 0) return 0;
    const off = kernel.alloc(bytes.len);
    var i: usize = 0;
    while (i + 8 <= bytes.len) : (i += 8) {
        kernel.store_u64(off + i, std.mem.readInt(u64, bytes[i..][0..8], .little));
    }
    while (i < bytes.len) : (i += 1) kernel.store_u8(off + i, bytes[i]);
    return off;
}

/// Copy an Extism memory block into plugin memory (offset 0 gives "").
pub fn fromExtism(off: u64) Error![]u8 {
    if (off == 0) return (try alloc(0));
    const n = try toUsize(kernel.length(off));
    const buf = try alloc(n);
    var i: usize = 0;
    while (i + 8 <= n) : (i += 8) {
        std.mem.writeInt(u64, buf[i..][0..8], kernel.load_u64(off + i), .little);
    }
    while (i < n) : (i += 1) buf[i] = kernel.load_u8(off + i);
    return buf;
}

/// Like `fromExtism`, then frees the Extism block (for blocks the host or
/// kernel handed to us: config values, kv values, HTTP bodies).
pub fn takeExtism(off: u64) Error![]u8 {
    const b = try fromExtism(off);
    if (off != 0) kernel.free(off);
    return b;
}

// ---------------------------------------------------------------------------
// Input, output, errors, config, logging
// ---------------------------------------------------------------------------

/// The whole call input.
pub fn input() Error![]u8 {
    const n = try toUsize(kernel.input_length());
    const buf = try alloc(n);
    var i: usize = 0;
    while (i + 8 <= n) : (i += 8) {
        std.mem.writeInt(u64, buf[i..][0..8], kernel.input_load_u64(i), .little);
    }
    while (i < n) : (i += 1) buf[i] = kernel.input_load_u8(i);
    return buf;
}

/// Set the call output.
pub fn output(bytes: []const u8) void {
    kernel.output_set(toExtism(bytes), bytes.len);
}

/// Set the call error message. The export must then return non-zero
/// (`run` does both).
pub fn setError(msg: []const u8) void {
    const m = if (msg.len == 0) "error" else msg;
    kernel.error_set(toExtism(m));
}

var fail_message: ?[]const u8 = null;

/// Record `msg` as the call's error and return `error.Failed`:
/// `return ex.fail("missing field: user");`
pub fn fail(msg: []const u8) error{Failed} {
    fail_message = msg;
    return error.Failed;
}

/// `fail` with a message made of several pieces.
pub fn failParts(parts: []const []const u8) error{Failed} {
    fail_message = concat(parts) catch "error (out of memory formatting the message)";
    return error.Failed;
}

/// Run an export body: 0 on success; on error, sets the Extism error (the
/// `fail` message, else the error name) and returns 1.
pub fn run(comptime body: fn () anyerror!void) i32 {
    body() catch |err| {
        setError(fail_message orelse @errorName(err));
        return 1;
    };
    return 0;
}

/// A config value from the manifest/plugin config, or null when unset.
pub fn config(key: []const u8) Error!?[]u8 {
    const k = toExtism(key);
    const off = kernel.config_get(k);
    if (k != 0) kernel.free(k);
    if (off == 0) return null;
    return try takeExtism(off);
}

pub fn logInfo(msg: []const u8) void {
    const off = toExtism(msg);
    kernel.log_info(off);
    if (off != 0) kernel.free(off);
}

pub fn logError(msg: []const u8) void {
    const off = toExtism(msg);
    kernel.log_error(off);
    if (off != 0) kernel.free(off);
}

// ---------------------------------------------------------------------------
// Host key-value store (needs the `store:NAME` capability)
// ---------------------------------------------------------------------------

/// The value stored under `key`, or null.
pub fn kvGet(key: []const u8) Error!?[]u8 {
    const k = toExtism(key);
    const off = host.kv_get(k);
    if (k != 0) kernel.free(k);
    if (off == 0) return null;
    return try takeExtism(off);
}

pub fn kvSet(key: []const u8, value: []const u8) void {
    const k = toExtism(key);
    const v = toExtism(value);
    host.kv_set(k, v);
    if (k != 0) kernel.free(k);
    if (v != 0) kernel.free(v);
}

pub fn kvDelete(key: []const u8) void {
    const k = toExtism(key);
    host.kv_delete(k);
    if (k != 0) kernel.free(k);
}

// ---------------------------------------------------------------------------
// HTTP through Extism (needs `http:HOST`; a host not allowed traps the call)
// ---------------------------------------------------------------------------

pub const Response = struct {
    status: i32,
    body: []u8,
};

/// Make an HTTP request. `headers_json` is a JSON object of string values
/// (or null); `body` null sends no body.
pub fn http(method: []const u8, url: []const u8, headers_json: ?[]const u8, body: ?[]const u8) Error!Response {
    var req = Buf{};
    try req.append("{\"url\":");
    try req.string(url);
    try req.append(",\"method\":");
    try req.string(method);
    try req.append(",\"headers\":");
    try req.append(headers_json orelse "{}");
    try req.append("}");
    const req_off = toExtism(req.items());
    const body_off: u64 = if (body) |b| toExtism(b) else 0;
    const resp_off = kernel.http_request(req_off, body_off);
    if (req_off != 0) kernel.free(req_off);
    if (body_off != 0) kernel.free(body_off);
    const status = kernel.http_status_code();
    return .{ .status = status, .body = try takeExtism(resp_off) };
}

// ---------------------------------------------------------------------------
// Output buffer and JSON writing
// ---------------------------------------------------------------------------

/// A growable byte buffer with JSON writers.
pub const Buf = struct {
    mem: []u8 = &[_]u8{},
    len: usize = 0,

    pub fn items(self: *const Buf) []u8 {
        return self.mem[0..self.len];
    }

    fn ensure(self: *Buf, extra: usize) Error!void {
        const need = self.len + extra;
        if (need <= self.mem.len) return;
        if (need < self.len) return error.OutOfMemory; // overflow
        var cap: usize = if (self.mem.len < 64) 64 else self.mem.len;
        while (cap < need) cap = if (cap > std.math.maxInt(usize) / 2) need else cap * 2;
        const grown = try realloc(self.mem, cap);
        self.mem = grown;
    }

    pub fn append(self: *Buf, bytes: []const u8) Error!void {
        try self.ensure(bytes.len);
        @memcpy(self.mem[self.len .. self.len + bytes.len], bytes);
        self.len += bytes.len;
    }

    pub fn byte(self: *Buf, b: u8) Error!void {
        try self.ensure(1);
        self.mem[self.len] = b;
        self.len += 1;
    }

    /// A decimal integer.
    pub fn int(self: *Buf, v: i64) Error!void {
        var tmp: [24]u8 = undefined;
        var i: usize = tmp.len;
        var u: u64 = if (v < 0) @as(u64, @bitCast(-%v)) else @intCast(v);
        while (true) {
            i -= 1;
            tmp[i] = '0' + @as(u8, @intCast(u % 10));
            u /= 10;
            if (u == 0) break;
        }
        if (v < 0) {
            i -= 1;
            tmp[i] = '-';
        }
        try self.append(tmp[i..]);
    }

    /// A JSON string literal (with quotes). Escapes `"`, `\` and control
    /// characters; invalid UTF-8 bytes become U+FFFD, so the result is always
    /// valid JSON.
    pub fn string(self: *Buf, s: []const u8) Error!void {
        try self.byte('"');
        var i: usize = 0;
        while (i < s.len) {
            const c = s[i];
            if (c < 0x80) {
                switch (c) {
                    '"' => try self.append("\\\""),
                    '\\' => try self.append("\\\\"),
                    '\n' => try self.append("\\n"),
                    '\r' => try self.append("\\r"),
                    '\t' => try self.append("\\t"),
                    0x08 => try self.append("\\b"),
                    0x0c => try self.append("\\f"),
                    else => if (c < 0x20 or c == 0x7f) {
                        const hex = "0123456789abcdef";
                        try self.append("\\u00");
                        try self.byte(hex[c >> 4]);
                        try self.byte(hex[c & 15]);
                    } else try self.byte(c),
                }
                i += 1;
                continue;
            }
            const n = utf8SeqLen(s[i..]);
            if (n == 0) {
                try self.append("\\ufffd");
                i += 1;
            } else {
                try self.append(s[i .. i + n]);
                i += n;
            }
        }
        try self.byte('"');
    }

    /// `"key":` (after a comma when needed is the caller's business).
    pub fn key(self: *Buf, k: []const u8) Error!void {
        try self.string(k);
        try self.byte(':');
    }
};

/// Length of a valid UTF-8 sequence at the start of `s`, or 0 if invalid.
fn utf8SeqLen(s: []const u8) usize {
    const c = s[0];
    var n: usize = 0;
    var min: u32 = 0;
    var cp: u32 = 0;
    if (c < 0x80) return 1;
    if (c & 0xe0 == 0xc0) {
        n = 2;
        min = 0x80;
        cp = c & 0x1f;
    } else if (c & 0xf0 == 0xe0) {
        n = 3;
        min = 0x800;
        cp = c & 0x0f;
    } else if (c & 0xf8 == 0xf0) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else return 0;
    if (s.len < n) return 0;
    var k: usize = 1;
    while (k < n) : (k += 1) {
        if (s[k] & 0xc0 != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff)) return 0;
    return n;
}

/// Longest prefix of `s` of at most `max` bytes that does not cut a UTF-8
/// sequence in half.
pub fn utf8Prefix(s: []const u8, max: usize) []const u8 {
    if (s.len <= max) return s;
    var end = max;
    // step back over continuation bytes (at most 3)
    var back: usize = 0;
    while (end > 0 and back < 3 and s[end] & 0xc0 == 0x80) : (back += 1) end -= 1;
    return s[0..end];
}

/// Output `{"content": <content>, "is_error": <is_error>}`.
pub fn toolResult(content: []const u8, is_error: bool) Error!void {
    var b = Buf{};
    try b.append("{\"content\":");
    try b.string(content);
    try b.append(if (is_error) ",\"is_error\":true}" else ",\"is_error\":false}");
    output(b.items());
}

// ---------------------------------------------------------------------------
// JSON reading: values are slices of the original text ("raw" values)
// ---------------------------------------------------------------------------

pub const json = struct {
    const max_depth = 128;

    fn isWs(c: u8) bool {
        return c == ' ' or c == '\t' or c == '\n' or c == '\r';
    }

    fn skipWs(s: []const u8, start: usize) usize {
        var i = start;
        while (i < s.len and isWs(s[i])) i += 1;
        return i;
    }

    fn hexVal(c: u8) ?u16 {
        return switch (c) {
            '0'...'9' => c - '0',
            'a'...'f' => c - 'a' + 10,
            'A'...'F' => c - 'A' + 10,
            else => null,
        };
    }

    /// Index just after the string starting at s[i] == '"'.
    fn skipString(s: []const u8, start: usize) Error!usize {
        var i = start + 1;
        while (i < s.len) {
            const c = s[i];
            if (c == '"') return i + 1;
            if (c < 0x20) return error.BadJson;
            if (c == '\\') {
                if (i + 1 >= s.len) return error.BadJson;
                switch (s[i + 1]) {
                    '"', '\\', '/', 'b', 'f', 'n', 'r', 't' => i += 2,
                    'u' => {
                        if (i + 6 > s.len) return error.BadJson;
                        for (s[i + 2 .. i + 6]) |h| if (hexVal(h) == null) return error.BadJson;
                        i += 6;
                    },
                    else => return error.BadJson,
                }
            } else i += 1;
        }
        return error.BadJson;
    }

    fn skipNumber(s: []const u8, start: usize) Error!usize {
        var i = start;
        if (i < s.len and s[i] == '-') i += 1;
        if (i >= s.len) return error.BadJson;
        if (s[i] == '0') {
            i += 1;
        } else if (s[i] >= '1' and s[i] <= '9') {
            while (i < s.len and s[i] >= '0' and s[i] <= '9') i += 1;
        } else return error.BadJson;
        if (i < s.len and s[i] == '.') {
            i += 1;
            const d = i;
            while (i < s.len and s[i] >= '0' and s[i] <= '9') i += 1;
            if (i == d) return error.BadJson;
        }
        if (i < s.len and (s[i] == 'e' or s[i] == 'E')) {
            i += 1;
            if (i < s.len and (s[i] == '+' or s[i] == '-')) i += 1;
            const d = i;
            while (i < s.len and s[i] >= '0' and s[i] <= '9') i += 1;
            if (i == d) return error.BadJson;
        }
        return i;
    }

    fn skipLiteral(s: []const u8, i: usize, lit: []const u8) Error!usize {
        if (s.len - i < lit.len or !eql(s[i .. i + lit.len], lit)) return error.BadJson;
        return i + lit.len;
    }

    /// Index just after the value starting at s[i] (no leading whitespace).
    fn skipValue(s: []const u8, i: usize, depth: usize) Error!usize {
        if (i >= s.len or depth > max_depth) return error.BadJson;
        switch (s[i]) {
            '"' => return skipString(s, i),
            '{', '[' => {
                const close: u8 = if (s[i] == '{') '}' else ']';
                var j = skipWs(s, i + 1);
                if (j < s.len and s[j] == close) return j + 1;
                while (true) {
                    if (close == '}') {
                        if (j >= s.len or s[j] != '"') return error.BadJson;
                        j = skipWs(s, try skipString(s, j));
                        if (j >= s.len or s[j] != ':') return error.BadJson;
                        j = skipWs(s, j + 1);
                    }
                    j = skipWs(s, try skipValue(s, j, depth + 1));
                    if (j >= s.len) return error.BadJson;
                    if (s[j] == close) return j + 1;
                    if (s[j] != ',') return error.BadJson;
                    j = skipWs(s, j + 1);
                }
            },
            't' => return skipLiteral(s, i, "true"),
            'f' => return skipLiteral(s, i, "false"),
            'n' => return skipLiteral(s, i, "null"),
            else => return skipNumber(s, i),
        }
    }

    /// The text is exactly one JSON value (surrounding whitespace allowed).
    pub fn valid(s: []const u8) bool {
        const start = skipWs(s, 0);
        const end = skipValue(s, start, 0) catch return false;
        return skipWs(s, end) == s.len;
    }

    /// Trim whitespace around a raw value.
    pub fn trim(s: []const u8) []const u8 {
        var a: usize = 0;
        var b: usize = s.len;
        while (a < b and isWs(s[a])) a += 1;
        while (b > a and isWs(s[b - 1])) b -= 1;
        return s[a..b];
    }

    pub fn isObject(raw: []const u8) bool {
        const t = trim(raw);
        return t.len > 0 and t[0] == '{';
    }

    pub fn isString(raw: []const u8) bool {
        const t = trim(raw);
        return t.len > 0 and t[0] == '"';
    }

    pub fn isNumber(raw: []const u8) bool {
        const t = trim(raw);
        return t.len > 0 and (t[0] == '-' or (t[0] >= '0' and t[0] <= '9'));
    }

    pub fn isNull(raw: []const u8) bool {
        return eql(trim(raw), "null");
    }

    /// The raw value of `key` in the object `obj` (first match), or null if
    /// `obj` is not an object, is malformed, or has no such key. Keys are
    /// compared after unescaping.
    pub fn get(obj: []const u8, key: []const u8) ?[]const u8 {
        var i = skipWs(obj, 0);
        if (i >= obj.len or obj[i] != '{') return null;
        i = skipWs(obj, i + 1);
        if (i < obj.len and obj[i] == '}') return null;
        while (i < obj.len) {
            if (obj[i] != '"') return null;
            const kend = skipString(obj, i) catch return null;
            const ktok = obj[i..kend];
            i = skipWs(obj, kend);
            if (i >= obj.len or obj[i] != ':') return null;
            i = skipWs(obj, i + 1);
            const vend = skipValue(obj, i, 1) catch return null;
            if (keyEquals(ktok, key)) return obj[i..vend];
            i = skipWs(obj, vend);
            if (i >= obj.len or obj[i] != ',') return null;
            i = skipWs(obj, i + 1);
        }
        return null;
    }

    fn keyEquals(tok: []const u8, key: []const u8) bool {
        const inner = tok[1 .. tok.len - 1];
        if (std.mem.indexOfScalar(u8, inner, '\\') == null) return eql(inner, key);
        const un = string(tok) catch return false;
        return eql(un, key);
    }

    /// Follow a path of keys through nested objects.
    pub fn path(doc: []const u8, keys: []const []const u8) ?[]const u8 {
        var cur = doc;
        for (keys) |k| cur = get(cur, k) orelse return null;
        return cur;
    }

    /// Unescape a raw JSON string value (with its quotes) into new memory.
    /// \uXXXX escapes become UTF-8 (surrogate pairs combined; a lone
    /// surrogate becomes U+FFFD).
    pub fn string(raw: []const u8) Error![]u8 {
        const t = trim(raw);
        if (t.len < 2 or t[0] != '"') return error.BadJson;
        const end = try skipString(t, 0);
        if (end != t.len) return error.BadJson;
        const s = t[1 .. t.len - 1];
        const out = try alloc(s.len);
        var o: usize = 0;
        var i: usize = 0;
        while (i < s.len) {
            const c = s[i];
            if (c != '\\') {
                out[o] = c;
                o += 1;
                i += 1;
                continue;
            }
            const e = s[i + 1];
            i += 2;
            const simple: ?u8 = switch (e) {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => 0x08,
                'f' => 0x0c,
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                else => null,
            };
            if (simple) |ch| {
                out[o] = ch;
                o += 1;
                continue;
            }
            // \uXXXX
            var cp: u32 = hex4(s[i .. i + 4]);
            i += 4;
            if (cp >= 0xd800 and cp <= 0xdbff) {
                if (i + 6 <= s.len and s[i] == '\\' and s[i + 1] == 'u') {
                    const lo = hex4(s[i + 2 .. i + 6]);
                    if (lo >= 0xdc00 and lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        i += 6;
                    } else cp = 0xfffd;
                } else cp = 0xfffd;
            } else if (cp >= 0xdc00 and cp <= 0xdfff) cp = 0xfffd;
            o += encodeUtf8(cp, out[o..]);
        }
        return out[0..o];
    }

    fn hex4(h: []const u8) u32 {
        var v: u32 = 0;
        for (h) |c| v = (v << 4) | (hexVal(c) orelse 0);
        return v;
    }

    fn encodeUtf8(cp: u32, out: []u8) usize {
        if (cp < 0x80) {
            out[0] = @intCast(cp);
            return 1;
        } else if (cp < 0x800) {
            out[0] = @intCast(0xc0 | (cp >> 6));
            out[1] = @intCast(0x80 | (cp & 0x3f));
            return 2;
        } else if (cp < 0x10000) {
            out[0] = @intCast(0xe0 | (cp >> 12));
            out[1] = @intCast(0x80 | ((cp >> 6) & 0x3f));
            out[2] = @intCast(0x80 | (cp & 0x3f));
            return 3;
        } else {
            out[0] = @intCast(0xf0 | (cp >> 18));
            out[1] = @intCast(0x80 | ((cp >> 12) & 0x3f));
            out[2] = @intCast(0x80 | ((cp >> 6) & 0x3f));
            out[3] = @intCast(0x80 | (cp & 0x3f));
            return 4;
        }
    }

    /// The unescaped string under `key`, or null when absent or not a string.
    pub fn getString(obj: []const u8, key: []const u8) Error!?[]u8 {
        const raw = get(obj, key) orelse return null;
        if (!isString(raw)) return null;
        return try string(raw);
    }

    /// A raw number as an integer (no fraction/exponent), or null.
    pub fn int(raw: []const u8) ?i64 {
        const t = trim(raw);
        if (t.len == 0) return null;
        var i: usize = 0;
        const neg = t[0] == '-';
        if (neg) i = 1;
        if (i >= t.len) return null;
        var v: i64 = 0;
        while (i < t.len) : (i += 1) {
            const c = t[i];
            if (c < '0' or c > '9') return null;
            v = std.math.mul(i64, v, 10) catch return null;
            const d: i64 = c - '0';
            v = (if (neg) std.math.sub(i64, v, d) else std.math.add(i64, v, d)) catch return null;
        }
        return v;
    }

    /// The integer under `key`, or null when absent or not an integer.
    pub fn getInt(obj: []const u8, key: []const u8) ?i64 {
        return int(get(obj, key) orelse return null);
    }

    /// A string or integer id as text: a JSON string is unescaped, a number
    /// is copied verbatim (so 64-bit and negative ids survive exactly).
    pub fn idText(raw: []const u8) Error!?[]u8 {
        const t = trim(raw);
        if (isString(t)) return try string(t);
        if (isNumber(t)) {
            const end = skipNumber(t, 0) catch return null;
            if (end != t.len) return null;
            return try dupe(t);
        }
        return null;
    }
};
