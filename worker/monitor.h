/*
 * monitor.h - the monitor role of csmcp-worker (csmcp-worker --role monitor): the supervised
 * background process that leads the autonomous monitors and delivers the outbox (monitor.c).
 */
#ifndef CSMCP_MONITOR_H
#define CSMCP_MONITOR_H

struct cfg;

/* Runs the monitor process until it drains or is stopped; returns the exit code. */
int monitor_main(const struct cfg *cfg, int slot, int generation, int ctl_fd);

#endif
