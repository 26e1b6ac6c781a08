// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Never loaded. One global of every wire struct, so this object's BTF describes them all;
 * the artifact tests compare each C# mirror in Vigil.Wire against it. */
#include "vmlinux.h"
#include "vigil/tcp.h"
#include "vigil/guard.h"

struct vigil_event_header vigil_layout_event_header;
struct vigil_owner vigil_layout_owner;
struct vigil_lpm_key vigil_layout_lpm_key;
struct vigil_tcp_config vigil_layout_tcp_config;
struct vigil_tcp_event vigil_layout_tcp_event;
struct vigil_flow_key vigil_layout_flow_key;
struct vigil_flow_value vigil_layout_flow_value;
struct vigil_flow_pending vigil_layout_flow_pending;
struct vigil_guard_config vigil_layout_guard_config;
struct vigil_guard_state vigil_layout_guard_state;
struct vigil_guard_dst_key vigil_layout_guard_dst_key;
struct vigil_guard_policy_text vigil_layout_guard_policy_text;
struct vigil_guard_rules vigil_layout_guard_rules;
struct vigil_guard_port_key vigil_layout_guard_port_key;
struct vigil_guard_principal_key vigil_layout_guard_principal_key;
struct vigil_guard_allow_value vigil_layout_guard_allow_value;
struct vigil_guard_settings vigil_layout_guard_settings;
struct vigil_guard_event vigil_layout_guard_event;
