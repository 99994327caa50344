/*
 * raid-alert: warns moderators when members join in a burst.
 *
 * It keeps the join times of the last window (config window_seconds,
 * default 60) in key-value storage; when they reach threshold (default 10)
 * it emits a raid.alert event to the guild's dashboards and logs a warning,
 * at most once per window. GET /status reports the current window.
 */
#include "spywatcher.h"

#include <stdio.h>

#define MAX_JOINS 4096

/* settings reads the guild's configuration. */
static void settings(int64_t *threshold, int64_t *window_ms) {
  *threshold = 10;
  *window_ms = 60000;
  sw_buf cfg = sw_config(SW_CONFIG_JSON);
  if (!cfg.data) return;
  sw_json c = sw_json_of(cfg.data, cfg.len);
  int ok;
  sw_json v = sw_json_get(c, "threshold", &ok);
  if (ok && sw_json_num(v) >= 2) *threshold = (int64_t)sw_json_num(v);
  v = sw_json_get(c, "window_seconds", &ok);
  if (ok && sw_json_num(v) >= 1) *window_ms = (int64_t)(sw_json_num(v) * 1000);
  sw_buf_free(&cfg);
}

/* The window is stored as decimal milliseconds separated by commas. */
static size_t load_window(int64_t *joins) {
  sw_buf v;
  size_t n = 0;
  if (sw_kv_get("window", &v) != 0 || !v.data) return 0;
  for (char *p = v.data; *p && n < MAX_JOINS;) {
    joins[n++] = strtoll(p, &p, 10);
    if (*p == ',') p++;
  }
  sw_buf_free(&v);
  return n;
}

static int store_window(const int64_t *joins, size_t n) {
  sw_jw w = {0};
  for (size_t i = 0; i < n; i++) {
    if (i) sw_jw_lit(&w, ",");
    sw_jw_int(&w, joins[i]);
  }
  int rc = sw_kv_set("window", w.data ? w.data : "", w.len);
  sw_jw_free(&w);
  return rc;
}

static int64_t joins[MAX_JOINS];

SW_EXPORT("on_events") int32_t on_events(void) {
  int64_t threshold, window_ms;
  settings(&threshold, &window_ms);
  sw_buf in = sw_input();
  int ok;
  sw_json events = sw_json_get(sw_json_of(in.data, in.len), "events", &ok);
  if (!ok) {
    sw_buf_free(&in);
    return sw_fail("on_events: no events in the input");
  }
  size_t n = load_window(joins);
  int64_t last_alert = sw_kv_get_int("last_alert", 0);
  int64_t alerts = sw_kv_get_int("alerts", 0), seen = 0;
  const char *it = NULL;
  sw_json ev;
  while (sw_json_array_next(events, &it, &ev)) {
    if (!sw_json_eq(sw_json_get(ev, "kind", &ok), "member.join")) continue;
    int64_t at = sw_time_ms(sw_json_get(ev, "at", &ok));
    seen++;
    /* Drop joins that left the window, then add this one. */
    size_t keep = 0;
    for (size_t i = 0; i < n; i++)
      if (joins[i] > at - window_ms) joins[keep++] = joins[i];
    n = keep;
    if (n < MAX_JOINS) joins[n++] = at;
    if ((int64_t)n >= threshold && at - last_alert >= window_ms) {
      last_alert = at;
      alerts++;
      char data[160], msg[160];
      snprintf(data, sizeof data, "{\"joins\":%d,\"window_seconds\":%lld,\"threshold\":%lld}", (int)n,
               (long long)(window_ms / 1000), (long long)threshold);
      snprintf(msg, sizeof msg, "raid alert: %d members joined within %lld seconds", (int)n, (long long)(window_ms / 1000));
      if (sw_emit("raid.alert", data) != 0) sw_log("warn", sw_last_error());
      sw_log("warn", msg);
    }
  }
  sw_buf_free(&in);
  if (seen == 0) return 0;
  if (store_window(joins, n) != 0 || sw_kv_set_int("last_alert", last_alert) != 0 || sw_kv_set_int("alerts", alerts) != 0)
    return sw_fail(sw_last_error());
  sw_metric("joins_seen", seen);
  return 0;
}

SW_EXPORT("http") int32_t http(void) {
  sw_buf in = sw_input();
  int ok;
  char path[64];
  sw_json_str(sw_json_get(sw_json_of(in.data, in.len), "path", &ok), path, sizeof path);
  sw_buf_free(&in);
  if (strcmp(path, "/status") != 0) {
    sw_http_respond(404, "{\"error\":\"no such route\"}");
    return 0;
  }
  int64_t threshold, window_ms;
  settings(&threshold, &window_ms);
  size_t n = load_window(joins);
  char body[200];
  snprintf(body, sizeof body, "{\"recent_joins\":%d,\"alerts\":%lld,\"threshold\":%lld,\"window_seconds\":%lld}", (int)n,
           (long long)sw_kv_get_int("alerts", 0), (long long)threshold, (long long)(window_ms / 1000));
  sw_http_respond(200, body);
  return 0;
}
