#ifndef MIGRATIONAUTH_CGSSAPI_SHIM_H
#define MIGRATIONAUTH_CGSSAPI_SHIM_H
// MIT GSSAPI/krb5 for Swift. The headers' OID globals are mutable C globals, which Swift 6 refuses
// as not concurrency-safe; these accessors return them (and the SPNEGO OID MIT does not export).
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ext.h>
#include <krb5/krb5.h>

static inline gss_OID mig_nt_hostbased_service(void) { return GSS_C_NT_HOSTBASED_SERVICE; }
static inline gss_OID mig_nt_user_name(void) { return GSS_C_NT_USER_NAME; }
static inline gss_OID mig_nt_export_name(void) { return GSS_C_NT_EXPORT_NAME; }
static inline gss_OID mig_nt_krb5_principal(void) { return GSS_KRB5_NT_PRINCIPAL_NAME; }
static inline gss_OID mig_mech_krb5(void) { return gss_mech_krb5; }
/// SPNEGO, 1.3.6.1.5.5.2 (RFC 4178).
static inline gss_OID mig_mech_spnego(void) {
    static gss_OID_desc oid = {6, (void *)"\x2b\x06\x01\x05\x05\x02"};
    return &oid;
}
#endif
