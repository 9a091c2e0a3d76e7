#ifndef MIGRATIONAUTH_CGSSAPI_SHIM_H
#define MIGRATIONAUTH_CGSSAPI_SHIM_H
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ext.h>
#include <krb5/krb5.h>
#endif
