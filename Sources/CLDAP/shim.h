#ifndef MIGAUTH_CLDAP_SHIM_H
#define MIGAUTH_CLDAP_SHIM_H
// OpenLDAP's libldap and liblber (Debian: libldap-dev) and Cyrus SASL's interaction types
// (libsasl2-dev), for the DirectoryLDAP target only.
#define LDAP_DEPRECATED 0
#include <lber.h>
#include <ldap.h>
#include <sasl/sasl.h>

/// `LDAP_OPT_ON` / `LDAP_OPT_OFF` are pointer macros Swift cannot import.
static inline void *migauth_ldap_opt_on(void) { return LDAP_OPT_ON; }
static inline void *migauth_ldap_opt_off(void) { return LDAP_OPT_OFF; }
#endif
