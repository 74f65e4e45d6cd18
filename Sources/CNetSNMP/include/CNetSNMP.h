// net-snmp for Swift: macros and variadics wrapped as functions (issue: the subagent).
#ifndef IPVSTOP_CNETSNMP_H
#define IPVSTOP_CNETSNMP_H
#include <sys/types.h>
#include <sys/select.h>
#endif
