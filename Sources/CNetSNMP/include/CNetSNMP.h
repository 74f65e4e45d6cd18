// net-snmp for Swift: what Swift cannot reach by itself (macros, variadics, the handler
// registration glue), as plain functions and constants. Everything else is Swift.
#ifndef IPVSTOP_CNETSNMP_H
#define IPVSTOP_CNETSNMP_H

// System headers first: net-snmp's config header defines _GNU_SOURCE, and any Swift file
// that also imports Foundation then fails on fd_set unless these come first.
#include <sys/types.h>
#include <sys/select.h>
#include <sys/time.h>
#include <stdint.h>
#include <stddef.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>

// Request modes (macros built from casts in net-snmp).
enum {
    IPVSTOP_MODE_GET = MODE_GET,
    IPVSTOP_MODE_GETNEXT = MODE_GETNEXT,
    IPVSTOP_MODE_GETBULK = MODE_GETBULK,
};

// Value types.
enum {
    IPVSTOP_ASN_INTEGER = ASN_INTEGER,
    IPVSTOP_ASN_OCTET_STR = ASN_OCTET_STR,
    IPVSTOP_ASN_OBJECT_ID = ASN_OBJECT_ID,
    IPVSTOP_ASN_COUNTER = ASN_COUNTER,
    IPVSTOP_ASN_GAUGE = ASN_GAUGE,
    IPVSTOP_ASN_UNSIGNED = ASN_UNSIGNED,
    IPVSTOP_ASN_TIMETICKS = ASN_TIMETICKS,
    IPVSTOP_ASN_COUNTER64 = ASN_COUNTER64,
    IPVSTOP_ASN_NULL = ASN_NULL,
};

// Per-varbind exceptions.
enum {
    IPVSTOP_NOSUCHOBJECT = SNMP_NOSUCHOBJECT,
    IPVSTOP_NOSUCHINSTANCE = SNMP_NOSUCHINSTANCE,
    IPVSTOP_ENDOFMIBVIEW = SNMP_ENDOFMIBVIEW,
};

/// Sets up the library as an AgentX subagent of the master at `agentx_socket` (a path,
/// or tcp:host:port), pinging it every `ping_seconds` so that a restarted master is
/// found again. Reads no configuration or persistent files and loads no MIBs. Logs go
/// to stderr when `log_stderr` is non-zero, nowhere otherwise. Returns 0 on success.
int ipvstop_agent_init(const char *appname, const char *agentx_socket, int ping_seconds, int log_stderr);

/// One pass of the agent loop: waits at most `max_wait_ms` for a request or a timer
/// (net-snmp's agent_check_and_process, with a cap so the caller regains control).
int ipvstop_agent_process(int max_wait_ms);

void ipvstop_agent_shutdown(const char *appname);

/// Registers `handler` read-only for the whole subtree at `root`; `context` comes back
/// as the handler's `myvoid`. Returns net-snmp's MIB_REGISTERED_OK (0) on success.
int ipvstop_register_subtree(const char *name, const oid *root, size_t root_len,
                             Netsnmp_Node_Handler *handler, void *context);

/// The context given to ipvstop_register_subtree, from inside the handler.
void *ipvstop_handler_context(netsnmp_mib_handler *handler);

int ipvstop_request_mode(netsnmp_agent_request_info *reqinfo);

/// Value setters: each takes the C type net-snmp expects for the ASN.1 type (long for
/// INTEGER, u_long for the unsigned ones, struct counter64 for Counter64).
void ipvstop_set_integer(netsnmp_variable_list *vb, long value);
void ipvstop_set_unsigned(netsnmp_variable_list *vb, u_char type, unsigned long value);
void ipvstop_set_counter64(netsnmp_variable_list *vb, uint64_t value);
void ipvstop_set_octets(netsnmp_variable_list *vb, const u_char *bytes, size_t len);
void ipvstop_set_oid_value(netsnmp_variable_list *vb, const oid *value, size_t len);
void ipvstop_set_name(netsnmp_variable_list *vb, const oid *name, size_t len);
void ipvstop_set_exception(netsnmp_agent_request_info *reqinfo, netsnmp_request_info *request, int exception);

/// Appends a varbind named `name` (value NULL for now) to `*head`; returns it.
netsnmp_variable_list *ipvstop_varlist_append(netsnmp_variable_list **head, const oid *name, size_t len);

/// Sends an SNMPv2 notification (the list starts with snmpTrapOID.0) through the master,
/// then frees the list.
void ipvstop_send_notification(netsnmp_variable_list *vars);

/// Number of sessions the agent has open: 0 while the master is away.
int ipvstop_agentx_connected(void);

#endif
