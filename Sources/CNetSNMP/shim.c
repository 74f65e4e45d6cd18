#include "CNetSNMP.h"
#include <stdlib.h>

// The subagent's session with the master (net-snmp's agentx/subagent.c): NULL while the
// master is away. Exported by libnetsnmpagent, declared in no public header.
extern netsnmp_session *main_session;

int ipvstop_agent_init(const char *appname, const char *agentx_socket, int ping_seconds, int log_stderr) {
    // No MIB files: the subagent never translates names, and loading them only prints
    // "Cannot find module" lines on machines without the IETF modules.
    setenv("MIBS", "", 1);
    snmp_disable_log();
    if (log_stderr) {
        snmp_enable_stderrlog();
    } else {
        // With no handler at all net-snmp falls back to stderr: give it one that drops.
        netsnmp_register_loghandler(NETSNMP_LOGHANDLER_NONE, LOG_DEBUG);
    }
    netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1);
    if (agentx_socket && *agentx_socket) {
        netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET, agentx_socket);
    }
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    if (init_agent(appname) != 0) {
        return -1;
    }
    // After init_agent, which sets the default (15 s), before init_snmp, which connects.
    if (ping_seconds > 0) {
        netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL, ping_seconds);
    }
    init_snmp(appname);
    return 0;
}

int ipvstop_agent_process(int max_wait_ms) {
    int numfds = 0, block = 0, count;
    fd_set readfds;
    struct timeval timeout, cap;

    FD_ZERO(&readfds);
    run_alarms();
    timerclear(&timeout);
    timeout.tv_sec = 3600;
    snmp_select_info(&numfds, &readfds, &timeout, &block);
    cap.tv_sec = max_wait_ms / 1000;
    cap.tv_usec = (max_wait_ms % 1000) * 1000;
    if (block || timercmp(&cap, &timeout, <)) {
        timeout = cap;
    }
    count = select(numfds, &readfds, NULL, NULL, &timeout);
    if (count > 0) {
        snmp_read(&readfds);
    } else if (count == 0) {
        snmp_timeout();
    }
    run_alarms();
    netsnmp_check_outstanding_agent_requests();
    return count;
}

void ipvstop_agent_shutdown(const char *appname) {
    snmp_shutdown(appname);
    shutdown_agent();
}

int ipvstop_register_subtree(const char *name, const oid *root, size_t root_len,
                             Netsnmp_Node_Handler *handler, void *context) {
    netsnmp_handler_registration *reg =
        netsnmp_create_handler_registration(name, handler, root, root_len, HANDLER_CAN_RONLY);
    if (!reg) {
        return MIB_REGISTRATION_FAILED;
    }
    reg->handler->myvoid = context;
    return netsnmp_register_handler(reg);
}

void *ipvstop_handler_context(netsnmp_mib_handler *handler) {
    return handler ? handler->myvoid : NULL;
}

int ipvstop_request_mode(netsnmp_agent_request_info *reqinfo) {
    return reqinfo->mode;
}

void ipvstop_set_integer(netsnmp_variable_list *vb, long value) {
    snmp_set_var_typed_value(vb, ASN_INTEGER, (const u_char *)&value, sizeof(value));
}

void ipvstop_set_unsigned(netsnmp_variable_list *vb, u_char type, unsigned long value) {
    snmp_set_var_typed_value(vb, type, (const u_char *)&value, sizeof(value));
}

void ipvstop_set_counter64(netsnmp_variable_list *vb, uint64_t value) {
    struct counter64 c;
    c.high = (u_long)(value >> 32);
    c.low = (u_long)(value & 0xffffffffu);
    snmp_set_var_typed_value(vb, ASN_COUNTER64, (const u_char *)&c, sizeof(c));
}

void ipvstop_set_octets(netsnmp_variable_list *vb, const u_char *bytes, size_t len) {
    static const u_char empty = 0;
    snmp_set_var_typed_value(vb, ASN_OCTET_STR, len ? bytes : &empty, len);
}

void ipvstop_set_oid_value(netsnmp_variable_list *vb, const oid *value, size_t len) {
    snmp_set_var_typed_value(vb, ASN_OBJECT_ID, (const u_char *)value, len * sizeof(oid));
}

void ipvstop_set_name(netsnmp_variable_list *vb, const oid *name, size_t len) {
    snmp_set_var_objid(vb, name, len);
}

void ipvstop_set_exception(netsnmp_agent_request_info *reqinfo, netsnmp_request_info *request, int exception) {
    netsnmp_set_request_error(reqinfo, request, exception);
}

netsnmp_variable_list *ipvstop_varlist_append(netsnmp_variable_list **head, const oid *name, size_t len) {
    return snmp_varlist_add_variable(head, name, len, ASN_NULL, NULL, 0);
}

void ipvstop_send_notification(netsnmp_variable_list *vars) {
    send_v2trap(vars);
    snmp_free_varbind(vars);
}

int ipvstop_agentx_connected(void) {
    return main_session != NULL;
}
