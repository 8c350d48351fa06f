/*
 * analyze_join_duckdb.c: the few DuckDB C API entry points the native engine
 * uses, loaded at run time (dlopen) from the libduckdb.so that
 * @duckdb/node-bindings ships, and the record readers: one streaming query
 * per record, whose chunks a producer thread fetches (DuckDB decodes the
 * Parquet or CSV in it) while the merge consumes them.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_join.h"

ddb_api ddb;

static pthread_mutex_t ddb_lock = PTHREAD_MUTEX_INITIALIZER;

static int ddb_load_locked(const char *path, char *err, size_t errcap);
int ddb_load(const char *path, char *err, size_t errcap) {
  pthread_mutex_lock(&ddb_lock);
  int r = ddb_load_locked(path, err, errcap);
  pthread_mutex_unlock(&ddb_lock);
  return r;
}

static int ddb_load_locked(const char *path, char *err, size_t errcap) {
  if (ddb.loaded) return 0;
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errcap, "cannot load %s: %s", path, dlerror());
    return -1;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"duckdb_open", (void **)&ddb.open},
      {"duckdb_close", (void **)&ddb.close},
      {"duckdb_connect", (void **)&ddb.connect},
      {"duckdb_disconnect", (void **)&ddb.disconnect},
      {"duckdb_query", (void **)&ddb.query},
      {"duckdb_destroy_result", (void **)&ddb.destroy_result},
      {"duckdb_result_error", (void **)&ddb.result_error},
      {"duckdb_prepare", (void **)&ddb.prepare},
      {"duckdb_prepare_error", (void **)&ddb.prepare_error},
      {"duckdb_destroy_prepare", (void **)&ddb.destroy_prepare},
      {"duckdb_pending_prepared_streaming", (void **)&ddb.pending_prepared_streaming},
      {"duckdb_pending_error", (void **)&ddb.pending_error},
      {"duckdb_destroy_pending", (void **)&ddb.destroy_pending},
      {"duckdb_execute_pending", (void **)&ddb.execute_pending},
      {"duckdb_fetch_chunk", (void **)&ddb.fetch_chunk},
      {"duckdb_data_chunk_get_size", (void **)&ddb.chunk_size},
      {"duckdb_data_chunk_get_column_count", (void **)&ddb.chunk_columns},
      {"duckdb_data_chunk_get_vector", (void **)&ddb.chunk_vector},
      {"duckdb_vector_get_data", (void **)&ddb.vector_data},
      {"duckdb_vector_get_validity", (void **)&ddb.vector_validity},
      {"duckdb_destroy_data_chunk", (void **)&ddb.destroy_chunk},
      {"duckdb_column_count", (void **)&ddb.column_count},
      {"duckdb_column_type", (void **)&ddb.column_type},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(lib, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(err, errcap, "%s has no %s", path, syms[i].name);
      return -1;
    }
  }
  ddb.loaded = 1;
  return 0;
}

static void *reader_produce(void *arg) {
  reader *rd = arg;
  for (;;) {
    pthread_mutex_lock(&rd->mu);
    while (rd->qlen == QCAP && !rd->stop) pthread_cond_wait(&rd->not_full, &rd->mu);
    int stop = rd->stop;
    pthread_mutex_unlock(&rd->mu);
    if (stop) break;
    ddb_handle chunk = ddb.fetch_chunk(rd->res);
    pthread_mutex_lock(&rd->mu);
    if (!chunk) {
      const char *e = ddb.result_error(&rd->res);
      if (e && *e) snprintf(rd->error, sizeof rd->error, "%s", e);
      rd->eof = 1;
      pthread_cond_signal(&rd->not_empty);
      pthread_mutex_unlock(&rd->mu);
      break;
    }
    rd->queue[(rd->qhead + rd->qlen) % QCAP] = chunk;
    rd->qlen++;
    pthread_cond_signal(&rd->not_empty);
    pthread_mutex_unlock(&rd->mu);
  }
  return NULL;
}

int reader_next_chunk(aj_ctx *c, reader *rd) {
  for (;;) {
    if (rd->chunk) ddb.destroy_chunk(&rd->chunk);
    rd->chunk = NULL;
    pthread_mutex_lock(&rd->mu);
    while (rd->qlen == 0 && !rd->eof) pthread_cond_wait(&rd->not_empty, &rd->mu);
    if (rd->qlen > 0) {
      rd->chunk = rd->queue[rd->qhead];
      rd->qhead = (rd->qhead + 1) % QCAP;
      rd->qlen--;
      pthread_cond_signal(&rd->not_full);
    }
    pthread_mutex_unlock(&rd->mu);
    if (!rd->chunk) {
      if (rd->error[0]) fail(c, "ANALYZE_QUERY_FAILED", "reading a record: %s", rd->error);
      rd->done = 1;
      return 0;
    }
    idx_t n = ddb.chunk_size(rd->chunk);
    if (n == 0) continue;
    idx_t cols = ddb.chunk_columns(rd->chunk);
    if (cols < (idx_t)(c->mode_iter ? 4 : 3)) {
      fail(c, "AJ_BAD_QUERY", "a chunk has %llu columns", (unsigned long long)cols);
      rd->done = 1;
      return 0;
    }
    ddb_handle v[4] = {NULL, NULL, NULL, NULL};
    for (idx_t j = 0; j < cols && j < 4; j++) v[j] = ddb.chunk_vector(rd->chunk, j);
    rd->key = ddb.vector_data(v[0]);
    rd->smp = ddb.vector_data(v[1]);
    rd->t = ddb.vector_data(v[2]);
    rd->iter = cols > 3 ? ddb.vector_data(v[3]) : NULL;
    for (idx_t j = 0; j < 4; j++) rd->valid[j] = j < cols ? ddb.vector_validity(v[j]) : NULL;
    rd->n = n;
    rd->pos = 0;
    c->rows_read += n;
    return 1;
  }
}

int run_sql(aj_ctx *c, ddb_handle con, const char *sql) {
  ddb_result res;
  memset(&res, 0, sizeof res);
  int st = ddb.query(con, sql, &res);
  if (st != 0) fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.result_error(&res) ? ddb.result_error(&res) : "query failed");
  ddb.destroy_result(&res);
  return st == 0 ? 0 : -1;
}

int reader_open(aj_ctx *c, ddb_handle db, reader *rd, const char *sql) {
  if (ddb.connect(db, &rd->con) != 0) {
    fail(c, "ANALYZE_DB_FAILED", "cannot connect to DuckDB");
    return -1;
  }
  ddb_handle prep = NULL, pend = NULL;
  if (ddb.prepare(rd->con, sql, &prep) != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.prepare_error(prep) ? ddb.prepare_error(prep) : "prepare failed");
    ddb.destroy_prepare(&prep);
    return -1;
  }
  if (ddb.pending_prepared_streaming(prep, &pend) != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.pending_error(pend) ? ddb.pending_error(pend) : "pending failed");
    ddb.destroy_pending(&pend);
    ddb.destroy_prepare(&prep);
    return -1;
  }
  memset(&rd->res, 0, sizeof rd->res);
  int st = ddb.execute_pending(pend, &rd->res);
  rd->has_res = 1;
  ddb.destroy_pending(&pend);
  ddb.destroy_prepare(&prep);
  if (st != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.result_error(&rd->res) ? ddb.result_error(&rd->res) : "execute failed");
    return -1;
  }
  idx_t cols = ddb.column_count(&rd->res);
  int want[4] = {DDB_TYPE_UBIGINT, DDB_TYPE_INTEGER, DDB_TYPE_BIGINT, DDB_TYPE_BIGINT};
  if (cols != (idx_t)(c->mode_iter ? 4 : 3)) {
    fail(c, "AJ_BAD_QUERY", "the record query returns %llu columns", (unsigned long long)cols);
    return -1;
  }
  for (idx_t j = 0; j < cols; j++) {
    if (ddb.column_type(&rd->res, j) != want[j]) {
      fail(c, "AJ_BAD_QUERY", "column %llu of the record query has type %d", (unsigned long long)j, ddb.column_type(&rd->res, j));
      return -1;
    }
  }
  pthread_mutex_init(&rd->mu, NULL);
  pthread_cond_init(&rd->not_empty, NULL);
  pthread_cond_init(&rd->not_full, NULL);
  if (pthread_create(&rd->thread, NULL, reader_produce, rd) != 0) {
    fail(c, "ANALYZE_NATIVE_FAILED", "cannot start a reader thread");
    return -1;
  }
  rd->thread_started = 1;
  reader_next_chunk(c, rd);
  return 0;
}

void reader_close(reader *rd) {
  if (rd->thread_started) {
    pthread_mutex_lock(&rd->mu);
    rd->stop = 1;
    pthread_cond_signal(&rd->not_full);
    pthread_mutex_unlock(&rd->mu);
    pthread_join(rd->thread, NULL);
    while (rd->qlen > 0) {
      ddb.destroy_chunk(&rd->queue[rd->qhead]);
      rd->qhead = (rd->qhead + 1) % QCAP;
      rd->qlen--;
    }
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->not_empty);
    pthread_cond_destroy(&rd->not_full);
  }
  if (rd->chunk) ddb.destroy_chunk(&rd->chunk);
  if (rd->has_res) ddb.destroy_result(&rd->res);
  if (rd->con) ddb.disconnect(&rd->con);
}
