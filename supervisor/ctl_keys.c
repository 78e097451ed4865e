/* ctl_keys.c - placeholder until the security engineer's key/secret/audit commands land. */
#include <stdio.h>

#include "ctl_ext.h"

int ctl_keys_main(const struct cfg *cfg, int argc, char **argv)
{
    (void)cfg;
    (void)argc;
    fprintf(stderr, "csmcpctl %s: not built yet\n", argv[0]);
    return 1;
}
