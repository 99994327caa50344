/*
 * spywatcher.h — a single-header SDK for Spywatcher plugins in C.
 *
 * It speaks the Extism ABI directly: the kernel imports of the module
 * "extism:host/env" (input, output, memory blocks, config, errors) and the
 * Spywatcher host functions of "extism:host/user" (PLUGINS.md, "Host
 * functions"). No other library is needed; build with
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *         -o plugin.wasm plugin.c
 *
 * A plugin exports its hooks with SW_EXPORT("on_events") and friends, reads
 * its input with sw_input(), answers with sw_output() or fails with
 * sw_fail(). Host function wrappers return 0 on success and -1 when the
 * host refused or failed; sw_last_error() then holds the host's JSON error
 * object ({"code":"denied","message":...}).
 *
 * JSON: sw_json_* is a small reader for the documents the host sends
 * (objects, arrays, strings, numbers) — enough to walk an event batch
 * without a parser library — and sw_jw_* a writer with correct escaping.
 *
 * Everything is static: include this header in exactly the files that use
 * it (usually the one plugin source file).
 */
#ifndef SPYWATCHER_H
#define SPYWATCHER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SW_IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
/* SW_EXPORT names a hook: int32_t SW_EXPORT("on_events") on_events(void). */
#define SW_EXPORT(name) __attribute__((export_name(name)))
/* SW_API marks the SDK's own functions: static, and no warning when unused. */
#define SW_API static __attribute__((unused))

/* ---- Extism kernel (extism:host/env) ---- */
SW_IMPORT("extism:host/env", "input_length") uint64_t sw__input_length(void);
SW_IMPORT("extism:host/env", "input_load_u8") uint32_t sw__input_load_u8(uint64_t);
SW_IMPORT("extism:host/env", "input_load_u64") uint64_t sw__input_load_u64(uint64_t);
SW_IMPORT("extism:host/env", "length") uint64_t sw__length(uint64_t);
SW_IMPORT("extism:host/env", "alloc") uint64_t sw__alloc(uint64_t);
SW_IMPORT("extism:host/env", "free") void sw__free(uint64_t);
SW_IMPORT("extism:host/env", "load_u8") uint32_t sw__load_u8(uint64_t);
SW_IMPORT("extism:host/env", "load_u64") uint64_t sw__load_u64(uint64_t);
SW_IMPORT("extism:host/env", "store_u8") void sw__store_u8(uint64_t, uint32_t);
SW_IMPORT("extism:host/env", "store_u64") void sw__store_u64(uint64_t, uint64_t);
SW_IMPORT("extism:host/env", "output_set") void sw__output_set(uint64_t, uint64_t);
SW_IMPORT("extism:host/env", "error_set") void sw__error_set(uint64_t);
SW_IMPORT("extism:host/env", "config_get") uint64_t sw__config_get(uint64_t);

/* ---- Spywatcher host functions (extism:host/user) ----
 * Each takes the offset of a kernel block holding a JSON request and
 * returns the offset of a block holding the JSON response envelope
 * {"result": ...} or {"error": {"code", "message"}}. */
SW_IMPORT("extism:host/user", "kv_get") uint64_t sw__kv_get(uint64_t);
SW_IMPORT("extism:host/user", "kv_set") uint64_t sw__kv_set(uint64_t);
SW_IMPORT("extism:host/user", "kv_delete") uint64_t sw__kv_delete(uint64_t);
SW_IMPORT("extism:host/user", "kv_list") uint64_t sw__kv_list(uint64_t);
SW_IMPORT("extism:host/user", "log") uint64_t sw__log(uint64_t);
SW_IMPORT("extism:host/user", "metric") uint64_t sw__metric(uint64_t);
SW_IMPORT("extism:host/user", "member_get") uint64_t sw__member_get(uint64_t);
SW_IMPORT("extism:host/user", "activity_get") uint64_t sw__activity_get(uint64_t);
SW_IMPORT("extism:host/user", "emit") uint64_t sw__emit(uint64_t);
SW_IMPORT("extism:host/user", "http_fetch") uint64_t sw__http_fetch(uint64_t);

/* sw_buf is an owned byte buffer (malloc'd, NUL-terminated for convenience). */
typedef struct {
  char *data;
  size_t len;
} sw_buf;

SW_API void sw_buf_free(sw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

/* ---- moving bytes across the kernel ---- */

/* sw__read copies kernel block off into a new buffer, 8 bytes per call. */
SW_API sw_buf sw__read(uint64_t off) {
  sw_buf b = {0, 0};
  if (off == 0) return b;
  uint64_t n = sw__length(off);
  b.data = (char *)malloc(n + 1);
  if (!b.data) return b;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = sw__load_u64(off + i);
    memcpy(b.data + i, &w, 8);
  }
  for (; i < n; i++) b.data[i] = (char)sw__load_u8(off + i);
  b.data[n] = 0;
  b.len = (size_t)n;
  return b;
}

/* sw__write copies bytes into a new kernel block and returns its offset. */
SW_API uint64_t sw__write(const void *p, size_t n) {
  uint64_t off = sw__alloc(n);
  if (off == 0) return 0;
  const char *s = (const char *)p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    sw__store_u64(off + i, w);
  }
  for (; i < n; i++) sw__store_u8(off + i, (uint8_t)s[i]);
  return off;
}

/* sw_input returns the hook's input (JSON; see PLUGINS.md, "Hooks"). */
SW_API sw_buf sw_input(void) {
  sw_buf b = {0, 0};
  uint64_t n = sw__input_length();
  b.data = (char *)malloc(n + 1);
  if (!b.data) return b;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = sw__input_load_u64(i);
    memcpy(b.data + i, &w, 8);
  }
  for (; i < n; i++) b.data[i] = (char)sw__input_load_u8(i);
  b.data[n] = 0;
  b.len = (size_t)n;
  return b;
}

/* sw_output sets the hook's output. */
SW_API void sw_output(const void *p, size_t n) { sw__output_set(sw__write(p, n), n); }

/* sw_fail reports an error for this call and returns the code a hook
 * returns with it: `return sw_fail("bad input");` */
SW_API int32_t sw_fail(const char *msg) {
  sw__error_set(sw__write(msg, strlen(msg)));
  return 1;
}

/* sw_config returns a config value set by the host, or a buffer with
 * data == NULL when unset. The guild's configuration is the JSON object
 * under SW_CONFIG_JSON; SW_CONFIG_GUILD and SW_CONFIG_PLUGIN name the guild
 * and the plugin. */
#define SW_CONFIG_JSON "spywatcher.config"
#define SW_CONFIG_GUILD "spywatcher.guild_id"
#define SW_CONFIG_PLUGIN "spywatcher.plugin_id"
SW_API sw_buf sw_config(const char *key) {
  uint64_t k = sw__write(key, strlen(key));
  sw_buf b = sw__read(sw__config_get(k));
  sw__free(k);
  return b;
}

/* ---- JSON reading ----
 * A value is a [start, end) span of the document. Functions return NULL or
 * 0 on malformed input rather than crashing. */
typedef struct {
  const char *p, *end;
} sw_json;

SW_API const char *sw__ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

/* sw__skip returns the end of the value starting at p (after whitespace). */
SW_API const char *sw__skip(const char *p, const char *e) {
  p = sw__ws(p, e);
  if (p >= e) return NULL;
  if (*p == '"') {
    for (p++; p < e; p++) {
      if (*p == '\\') p++;
      else if (*p == '"') return p + 1;
    }
    return NULL;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (; p < e; p++) {
      if (*p == '"') {
        p = sw__skip(p, e);
        if (!p) return NULL;
        p--;
      } else if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
    }
    return NULL;
  }
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
  return p;
}

/* sw_json_of wraps a buffer. */
SW_API sw_json sw_json_of(const char *p, size_t n) {
  sw_json j = {p, p + n};
  return j;
}

/* sw_json_get finds key in the object j; ok is 0 when absent. */
SW_API sw_json sw_json_get(sw_json j, const char *key, int *ok) {
  sw_json none = {0, 0};
  *ok = 0;
  const char *p = sw__ws(j.p, j.end);
  if (!p || p >= j.end || *p != '{') return none;
  size_t klen = strlen(key);
  p++;
  for (;;) {
    p = sw__ws(p, j.end);
    if (p >= j.end || *p == '}') return none;
    const char *ks = p, *ke = sw__skip(p, j.end);
    if (!ke || *ks != '"') return none;
    p = sw__ws(ke, j.end);
    if (p >= j.end || *p != ':') return none;
    const char *vs = sw__ws(p + 1, j.end), *ve = sw__skip(vs, j.end);
    if (!ve) return none;
    if ((size_t)(ke - ks - 2) == klen && memcmp(ks + 1, key, klen) == 0) {
      sw_json v = {vs, ve};
      *ok = 1;
      return v;
    }
    p = sw__ws(ve, j.end);
    if (p < j.end && *p == ',') p++;
  }
}

/* sw_json_array_next iterates an array: start with *it = NULL; returns 0
 * at the end. */
SW_API int sw_json_array_next(sw_json arr, const char **it, sw_json *elem) {
  const char *p = *it ? *it : sw__ws(arr.p, arr.end);
  if (!*it) {
    if (p >= arr.end || *p != '[') return 0;
    p++;
  }
  p = sw__ws(p, arr.end);
  if (p < arr.end && *p == ',') p = sw__ws(p + 1, arr.end);
  if (p >= arr.end || *p == ']') return 0;
  const char *e = sw__skip(p, arr.end);
  if (!e) return 0;
  elem->p = p;
  elem->end = e;
  *it = e;
  return 1;
}

/* sw_json_eq reports whether j is the JSON string s (without escapes). */
SW_API int sw_json_eq(sw_json j, const char *s) {
  size_t n = strlen(s);
  return j.p && (size_t)(j.end - j.p) == n + 2 && *j.p == '"' && memcmp(j.p + 1, s, n) == 0;
}

/* sw_json_str copies the JSON string j, unescaped, into out (at most cap-1
 * bytes, NUL-terminated) and returns its length. \uXXXX becomes UTF-8. */
SW_API size_t sw_json_str(sw_json j, char *out, size_t cap) {
  size_t n = 0;
  if (!j.p || *j.p != '"' || cap == 0) {
    if (cap) out[0] = 0;
    return 0;
  }
  for (const char *p = j.p + 1; p < j.end - 1 && n + 4 < cap; p++) {
    char c = *p;
    if (c != '\\') {
      out[n++] = c;
      continue;
    }
    c = *++p;
    switch (c) {
      case 'n': out[n++] = '\n'; break;
      case 't': out[n++] = '\t'; break;
      case 'r': out[n++] = '\r'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'u': {
        unsigned cp = 0;
        for (int i = 1; i <= 4 && p + i < j.end; i++) {
          char h = p[i];
          cp = cp * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
        }
        p += 4;
        if (cp < 0x80) out[n++] = (char)cp;
        else if (cp < 0x800) {
          out[n++] = (char)(0xC0 | (cp >> 6));
          out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
          out[n++] = (char)(0xE0 | (cp >> 12));
          out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
          out[n++] = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default: out[n++] = c;
    }
  }
  out[n] = 0;
  return n;
}

/* sw_json_num returns the number j (0 when not a number). */
SW_API double sw_json_num(sw_json j) {
  if (!j.p) return 0;
  double v = 0, frac = 0, scale = 1;
  int neg = 0, dot = 0;
  for (const char *p = j.p; p < j.end; p++) {
    if (*p == '-') neg = 1;
    else if (*p == '.') dot = 1;
    else if (*p >= '0' && *p <= '9') {
      if (dot) {
        scale /= 10;
        frac += (*p - '0') * scale;
      } else v = v * 10 + (*p - '0');
    } else if (*p != '"') break;
  }
  v += frac;
  return neg ? -v : v;
}

/* sw_time_ms parses an RFC 3339 UTC time ("2026-01-02T03:04:05.678Z") into
 * Unix milliseconds; 0 when malformed. */
SW_API int64_t sw_time_ms(sw_json j) {
  char s[40];
  size_t n = sw_json_str(j, s, sizeof s);
  if (n < 19) return 0;
  int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14), se = atoi(s + 17);
  int64_t ms = 0;
  if (n > 20 && s[19] == '.') {
    int digits = 0;
    for (size_t i = 20; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
      if (digits < 3) ms = ms * 10 + (s[i] - '0');
    for (; digits < 3; digits++) ms *= 10;
  }
  /* days from civil (proleptic Gregorian) */
  y -= mo <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return ((days * 86400) + h * 3600 + mi * 60 + se) * 1000 + ms;
}

/* ---- JSON writing ---- */
typedef struct {
  char *data;
  size_t len, cap;
} sw_jw;

SW_API void sw_jw_raw(sw_jw *w, const char *s, size_t n) {
  if (w->len + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 256;
    while (cap < w->len + n + 1) cap *= 2;
    char *d = (char *)realloc(w->data, cap);
    if (!d) return;
    w->data = d;
    w->cap = cap;
  }
  memcpy(w->data + w->len, s, n);
  w->len += n;
  w->data[w->len] = 0;
}
SW_API void sw_jw_lit(sw_jw *w, const char *s) { sw_jw_raw(w, s, strlen(s)); }

/* sw_jw_str writes s as a JSON string. */
SW_API void sw_jw_str(sw_jw *w, const char *s) {
  sw_jw_raw(w, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      sw_jw_raw(w, e, 2);
    } else if (c < 0x20) {
      static const char hex[] = "0123456789abcdef";
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      sw_jw_raw(w, e, 6);
    } else sw_jw_raw(w, (const char *)&c, 1);
  }
  sw_jw_raw(w, "\"", 1);
}

/* sw_jw_int writes an integer. */
SW_API void sw_jw_int(sw_jw *w, int64_t v) {
  char b[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
  do {
    b[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) b[n++] = '-';
  for (int i = n - 1; i >= 0; i--) sw_jw_raw(w, &b[i], 1);
}

SW_API void sw_jw_free(sw_jw *w) {
  free(w->data);
  w->data = NULL;
  w->len = w->cap = 0;
}

/* ---- base64 (kv values are bytes, base64 in JSON) ---- */
SW_API const char sw__b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

SW_API void sw_jw_base64(sw_jw *w, const void *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  sw_jw_raw(w, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
    char o[4] = {sw__b64[v >> 18 & 63], sw__b64[v >> 12 & 63], i + 1 < n ? sw__b64[v >> 6 & 63] : '=', i + 2 < n ? sw__b64[v & 63] : '='};
    sw_jw_raw(w, o, 4);
  }
  sw_jw_raw(w, "\"", 1);
}

/* sw_base64_decode decodes the JSON string j into a new buffer. */
SW_API sw_buf sw_base64_decode(sw_json j) {
  sw_buf b = {0, 0};
  if (!j.p || *j.p != '"') return b;
  size_t n = (size_t)(j.end - j.p - 2);
  b.data = (char *)malloc(n * 3 / 4 + 4);
  if (!b.data) return b;
  unsigned acc = 0;
  int bits = 0;
  for (const char *p = j.p + 1; p < j.end - 1; p++) {
    const char *q = *p ? strchr(sw__b64, *p) : NULL;
    if (!q) continue; /* '=' and anything else */
    acc = acc << 6 | (unsigned)(q - sw__b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      b.data[b.len++] = (char)(acc >> bits & 0xFF);
    }
  }
  b.data[b.len] = 0;
  return b;
}

/* ---- calling host functions ---- */

/* sw_last_error holds the host's error object of the last failed call. */
SW_API char sw__last_error[512];
SW_API const char *sw_last_error(void) { return sw__last_error; }

/* sw_call sends the JSON request to fn and returns the "result" member of
 * the response (in *res, owned by the returned buffer), or -1 with
 * sw_last_error set. */
SW_API int sw_call(uint64_t (*fn)(uint64_t), const char *req, size_t n, sw_buf *resp, sw_json *res) {
  uint64_t in = sw__write(req, n);
  *resp = sw__read(fn(in));
  sw__free(in);
  int ok;
  sw_json env = sw_json_of(resp->data, resp->len);
  sw_json err = sw_json_get(env, "error", &ok);
  if (ok) {
    size_t m = (size_t)(err.end - err.p);
    if (m >= sizeof sw__last_error) m = sizeof sw__last_error - 1;
    memcpy(sw__last_error, err.p, m);
    sw__last_error[m] = 0;
    return -1;
  }
  *res = sw_json_get(env, "result", &ok);
  return ok ? 0 : -1;
}

/* sw_call_void is sw_call for functions whose result does not matter. */
SW_API int sw_call_void(uint64_t (*fn)(uint64_t), sw_jw *req) {
  sw_buf resp;
  sw_json res;
  int rc = sw_call(fn, req->data, req->len, &resp, &res);
  sw_buf_free(&resp);
  sw_jw_free(req);
  return rc;
}

/* sw_log writes into the host's log: level is debug, info, warn or error. */
SW_API int sw_log(const char *level, const char *msg) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"level\":");
  sw_jw_str(&w, level);
  sw_jw_lit(&w, ",\"message\":");
  sw_jw_str(&w, msg);
  sw_jw_lit(&w, "}");
  return sw_call_void(sw__log, &w);
}

/* sw_kv_get reads key into *value (data NULL when absent). Needs kv.read. */
SW_API int sw_kv_get(const char *key, sw_buf *value) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"key\":");
  sw_jw_str(&w, key);
  sw_jw_lit(&w, "}");
  sw_buf resp;
  sw_json res;
  int rc = sw_call(sw__kv_get, w.data, w.len, &resp, &res);
  sw_jw_free(&w);
  value->data = NULL;
  value->len = 0;
  if (rc == 0) {
    int ok;
    sw_json v = sw_json_get(res, "value", &ok);
    if (ok) *value = sw_base64_decode(v);
  }
  sw_buf_free(&resp);
  return rc;
}

/* sw_kv_set stores n bytes under key. Needs kv.write. */
SW_API int sw_kv_set(const char *key, const void *value, size_t n) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"key\":");
  sw_jw_str(&w, key);
  sw_jw_lit(&w, ",\"value\":");
  sw_jw_base64(&w, value, n);
  sw_jw_lit(&w, "}");
  return sw_call_void(sw__kv_set, &w);
}

/* sw_kv_delete removes key. Needs kv.write. */
SW_API int sw_kv_delete(const char *key) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"key\":");
  sw_jw_str(&w, key);
  sw_jw_lit(&w, "}");
  return sw_call_void(sw__kv_delete, &w);
}

/* sw_kv_get_int / sw_kv_set_int keep a decimal integer under key. */
SW_API int64_t sw_kv_get_int(const char *key, int64_t def) {
  sw_buf v;
  if (sw_kv_get(key, &v) != 0 || !v.data) return def;
  int64_t n = strtoll(v.data, NULL, 10);
  sw_buf_free(&v);
  return n;
}
SW_API int sw_kv_set_int(const char *key, int64_t n) {
  sw_jw w = {0};
  sw_jw_int(&w, n);
  int rc = sw_kv_set(key, w.data, w.len);
  sw_jw_free(&w);
  return rc;
}

/* sw_metric adds delta to the plugin's counter name. Needs metrics.write. */
SW_API int sw_metric(const char *name, int64_t delta) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"name\":");
  sw_jw_str(&w, name);
  sw_jw_lit(&w, ",\"delta\":");
  sw_jw_int(&w, delta);
  sw_jw_lit(&w, "}");
  return sw_call_void(sw__metric, &w);
}

/* sw_emit publishes an event of type typ with the JSON document data to the
 * guild's dashboards. Needs events.emit. */
SW_API int sw_emit(const char *typ, const char *data_json) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"type\":");
  sw_jw_str(&w, typ);
  sw_jw_lit(&w, ",\"data\":");
  sw_jw_lit(&w, data_json);
  sw_jw_lit(&w, "}");
  return sw_call_void(sw__emit, &w);
}

/* sw_member_get returns the member profile JSON of user_id in resp and member.
 * Needs members.read. Free resp. */
SW_API int sw_member_get(const char *user_id, sw_buf *resp, sw_json *member) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"user_id\":");
  sw_jw_str(&w, user_id);
  sw_jw_lit(&w, "}");
  int rc = sw_call(sw__member_get, w.data, w.len, resp, member);
  sw_jw_free(&w);
  return rc;
}

/* The remaining host functions (kv_list, activity_get, http_fetch) take
 * the JSON requests PLUGINS.md documents; call them with sw_call, e.g.
 *   sw_call(sw__kv_list, "{\"prefix\":\"user:\"}", 19, &resp, &res); */

/* sw_http_respond answers an http hook call with status and a JSON body. */
SW_API void sw_http_respond(int status, const char *json_body) {
  sw_jw w = {0};
  sw_jw_lit(&w, "{\"status\":");
  sw_jw_int(&w, status);
  sw_jw_lit(&w, ",\"headers\":{\"Content-Type\":\"application/json\"},\"body\":");
  sw_jw_base64(&w, json_body, strlen(json_body));
  sw_jw_lit(&w, "}");
  sw_output(w.data, w.len);
  sw_jw_free(&w);
}

#endif /* SPYWATCHER_H */
