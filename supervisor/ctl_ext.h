/*
 * ctl_ext.h - csmcpctl subcommands implemented outside the control-socket client:
 *   migrate | seed | import  -> ctl_db_main   (supervisor/ctl_db.c)
 *   key | secret | audit     -> ctl_keys_main (supervisor/ctl_keys.c)
 * argv[0] is the subcommand name; cfg is the loaded configuration (-c FILE, or defaults plus
 * CSMCP_* overrides), borrowed. Each returns the process exit code (0 success).
 */
#ifndef CSMCP_CTL_EXT_H
#define CSMCP_CTL_EXT_H

struct cfg;

int ctl_db_main(const struct cfg *cfg, int argc, char **argv);
int ctl_keys_main(const struct cfg *cfg, int argc, char **argv);

#endif
