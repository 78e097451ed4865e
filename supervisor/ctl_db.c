/* ctl_db.c - placeholder until the data engineer's migrate/seed/import lands. */
#include <stdio.h>

#include "ctl_ext.h"

int ctl_db_main(const struct cfg *cfg, int argc, char **argv)
{
    (void)cfg;
    (void)argc;
    fprintf(stderr, "csmcpctl %s: not built yet\n", argv[0]);
    return 1;
}
