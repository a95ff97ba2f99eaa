/* net_floor.c: the floor of any libcurl-based client for bulk_bench's leg (2): N GETs of
 * BASE/ioc?value=10.x.y.z (a new value each) with the X-Api-Key header, at concurrency C,
 * through one curl multi handle with reused easy handles and kept-alive connections, the
 * bodies discarded. No Lua, no JSON, no library: what libcurl and the kernel's loopback TCP
 * cost per request on this machine. Prints "requests N cpu_us_per_request U user_us S sys_us"
 * (CPU of this process, getrusage) and exits non-zero when a request did not end in a 200.
 * Usage: net_floor BASE_URL [N] [CONCURRENCY] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <curl/curl.h>

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p, (void)ud;
  return size * n;
}

static void set_url(CURL *e, const char *base, int i) {
  char url[512];
  snprintf(url, sizeof url, "%s/ioc?value=%d.%d.%d.%d", base, 10 + (i >> 24), (i >> 16) & 255,
           (i >> 8) & 255, i & 255);
  curl_easy_setopt(e, CURLOPT_URL, url);
}

static double us(struct timeval tv) { return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: net_floor BASE_URL [N] [CONCURRENCY]\n");
    return 2;
  }
  const char *base = argv[1];
  int total = argc > 2 ? atoi(argv[2]) : 20000, conc = argc > 3 ? atoi(argv[3]) : 64;
  if (total <= 0 || conc <= 0)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conc);
  struct curl_slist *hdrs = curl_slist_append(NULL, "X-Api-Key: bench-key-0123456789");
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  int next = 0, done = 0, bad = 0;
  for (int i = 0; i < conc && next < total; i++) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    set_url(e, base, next++);
    curl_multi_add_handle(m, e);
  }
  while (done < total) {
    int running = 0, left = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      CURL *e = msg->easy_handle;
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      bad += msg->data.result != CURLE_OK || status != 200;
      done++;
      curl_multi_remove_handle(m, e);
      if (next < total) {
        set_url(e, base, next++);
        curl_multi_add_handle(m, e);
      } else {
        curl_easy_cleanup(e);
      }
    }
    if (done < total)
      curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  getrusage(RUSAGE_SELF, &r1);
  double user = (us(r1.ru_utime) - us(r0.ru_utime)) / total;
  double sys = (us(r1.ru_stime) - us(r0.ru_stime)) / total;
  printf("requests %d cpu_us_per_request %.1f user_us %.1f sys_us %.1f failed %d\n", total,
         user + sys, user, sys, bad);
  curl_slist_free_all(hdrs);
  curl_multi_cleanup(m);
  curl_global_cleanup();
  return bad ? 1 : 0;
}
