/* proto.c - anchors the proto library so it is never empty while modules are added. */
#include <stddef.h>
const char *proto_library_name(void);
const char *proto_library_name(void)
{
    return "csmcp-proto";
}
