/*
 * spool.h - the local audit spool (issue 26): a write-ahead file per worker process under
 * audit.spool_dir, so a tool call can be acknowledged once its audit record is fsynced locally,
 * before PostgreSQL has committed it.
 *
 * Files: <dir>/audit-<writer>-<segment>.spool, where writer is the worker's audit writer id
 * ("<pid>-<16 hex>") and segment 000001, 000002, ... A file starts with a 64-byte header
 * (magic "CSMCPAUDITSPOOL1", the database identity: a hash of database.url) followed by frames
 * [u32 length][u32 CRC-32C of the payload][payload], little-endian; the payload is one audit
 * record exactly as sent to csmcp.audit_append_batch (JSON with writer and seq). A segment is
 * created under a temporary name, locked (flock LOCK_EX) and then renamed, so a *.spool file
 * whose lock can be taken belongs to no living process: its records are leftovers.
 *
 * Threading: spool_append only copies the frame into a buffer under a mutex; a dedicated writer
 * thread writes what accumulated and fdatasyncs it (group commit: everything that arrived while
 * the previous fdatasync ran goes in the next), then signals the event loop through an eventfd;
 * durable_fn(seq) runs on the loop with the highest record number that is on disk. Nothing on
 * the loop waits for the disk. The thread also rotates segments (SPOOL_SEGMENT_BYTES) and
 * deletes closed segments whose records PostgreSQL has (spool_shipped).
 */
#ifndef CSMCP_SPOOL_H
#define CSMCP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define SPOOL_SEGMENT_BYTES (16L * 1024 * 1024)
#define SPOOL_GROUP_WAIT_US 1000 /* longest wait for more records of a group commit */
#define SPOOL_HEADER_BYTES  64
#define SPOOL_FRAME_MAX     (1024 * 1024)

typedef void (*spool_durable_fn)(long long seq);

/* Creates dir if needed and this writer's first segment; starts the writer thread. -1 (logged)
 * when the spool cannot be used: the caller then relies on PostgreSQL commits alone. */
int spool_open(struct event_base *base, const char *dir, const char *writer, const char *dbid,
               spool_durable_fn durable_fn);
bool spool_active(void);
/* Records in the last group commit (loop side; 0 before the first): how many callers are busy. */
size_t spool_last_group(void);
/* Appends one record (seq increasing). Never blocks on the disk. The writer syncs a group once
 * it holds as many records as the previous group did, or SPOOL_GROUP_WAIT_US after the group's
 * first record arrived (a lone caller never waits). */
void spool_append(const char *rec, size_t len, long long seq);
/* Every record <= seq is in PostgreSQL (or will never be): closed segments up to it may go. */
void spool_shipped(long long seq);
/* Highest record number fdatasynced (0: none). */
long long spool_durable(void);
/* Bytes in this writer's segments on disk. */
uint64_t spool_bytes(void);
/* Writes and syncs what is pending, stops the thread, closes the files (releasing their locks).
 * all_shipped: every record is in PostgreSQL, delete the segments. Returns false when records
 * could not be made durable (write error). */
bool spool_close(bool all_shipped);

/* CRC-32C (Castagnoli) of buf. */
uint32_t spool_crc32c(const void *buf, size_t len);

/* ---- leftovers of writers that are gone (killed worker, host restart) ------------------ */

struct spool_leftover;
/* Claims (flock) the oldest segment of a writer that is gone, written for database dbid, skipping
 * writers listed by the caller's own writer id. NULL when there is none. Blocking file I/O on
 * small directories; called from a timer. */
struct spool_leftover *spool_claim_leftover(const char *dir, const char *own_writer,
                                            const char *dbid);
const char *spool_leftover_path(const struct spool_leftover *l);
/* Reads up to max records (frames) from the current position into out (a JSON array text,
 * "[rec,rec,...]", malloc'd) and sets *n. Returns 1 when records were read, 0 at the end of the
 * valid frames, -1 on a read error. A torn or corrupt frame ends the file: *torn_bytes says how
 * many bytes after the last valid frame were ignored. */
int spool_leftover_read(struct spool_leftover *l, size_t max, char **out, size_t *n,
                        uint64_t *torn_bytes);
/* Rewinds to the position before the last spool_leftover_read (a failed ship is re-read). */
void spool_leftover_rewind(struct spool_leftover *l);
/* Done: unlink (all shipped) or just release, then free. */
void spool_leftover_finish(struct spool_leftover *l, bool unlink_it);

#endif
