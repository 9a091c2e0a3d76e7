/*
 * The C side of `migauth-bench gss`: the same loops as Sources/MigAuthBench/GSSBench.swift,
 * against the same MIT GSSAPI library, for the Swift/C ratio in BENCHMARKS.md.
 *
 * usage: gss_bench SERVICE@HOST CCACHE KEYTAB RCACHE CONTEXTS WRAPS_64K WRAPS_1M [thread]
 * With "thread", the loops run on a second pthread, as the Swift loops run on a Dispatch worker
 * thread (glibc then serves malloc from a non-main arena, which costs MIT's code a few percent).
 * prints: contexts_per_second N / wrap_unwrap_64k_MBps N / wrap_unwrap_1m_MBps N
 */
#include <gssapi/gssapi.h>
#include <pthread.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void check(const char *what, OM_uint32 major, OM_uint32 minor) {
    if (GSS_ERROR(major)) {
        fprintf(stderr, "%s failed: major 0x%x minor 0x%x\n", what, major, minor);
        exit(1);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static gss_OID_set_desc krb5_set = {1, NULL};

/* Asks for what the Swift API returns: flags, lifetimes, actual mechanism, the peer's name and
 * the delegated credential (released at once, as a Swift value going out of scope would). */
static void establish(gss_cred_id_t icred, gss_cred_id_t acred, gss_name_t target,
                      gss_ctx_id_t *ictx, gss_ctx_id_t *actx) {
    OM_uint32 minor, major, amajor = GSS_S_CONTINUE_NEEDED, iflags, aflags, itime, atime;
    gss_OID imech, amech;
    gss_name_t peer = GSS_C_NO_NAME;
    gss_cred_id_t deleg = GSS_C_NO_CREDENTIAL;
    gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER, reply = GSS_C_EMPTY_BUFFER;
    OM_uint32 flags = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG
        | GSS_C_CONF_FLAG;
    *ictx = GSS_C_NO_CONTEXT;
    *actx = GSS_C_NO_CONTEXT;
    major = gss_init_sec_context(&minor, icred, ictx, target, gss_mech_krb5, flags, 0, NULL,
                                 GSS_C_NO_BUFFER, &imech, &out, &iflags, &itime);
    check("gss_init_sec_context", major, minor);
    while (out.length > 0) {
        amajor = gss_accept_sec_context(&minor, actx, acred, &out, NULL, &peer, &amech, &reply, &aflags,
                                        &atime, &deleg);
        check("gss_accept_sec_context", amajor, minor);
        gss_release_name(&minor, &peer);
        gss_release_cred(&minor, &deleg);
        gss_release_buffer(&minor, &out);
        if (!(major & GSS_S_CONTINUE_NEEDED))
            break;
        in = reply;
        major = gss_init_sec_context(&minor, icred, ictx, target, gss_mech_krb5, flags, 0, NULL, &in,
                                     &imech, &out, &iflags, &itime);
        check("gss_init_sec_context", major, minor);
        gss_release_buffer(&minor, &reply);
    }
    gss_release_buffer(&minor, &reply);
}

static double wrap_unwrap(gss_ctx_id_t ictx, gss_ctx_id_t actx, size_t size, int iterations) {
    OM_uint32 minor, major;
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 31);
    gss_buffer_desc in = {size, data}, wrapped, plain;
    int conf;
    double start = now();
    for (int i = 0; i < iterations; i++) {
        major = gss_wrap(&minor, ictx, 1, GSS_C_QOP_DEFAULT, &in, &conf, &wrapped);
        check("gss_wrap", major, minor);
        major = gss_unwrap(&minor, actx, &wrapped, &plain, &conf, NULL);
        check("gss_unwrap", major, minor);
        if (plain.length != size || !conf) {
            fprintf(stderr, "round trip mismatch\n");
            exit(1);
        }
        gss_release_buffer(&minor, &wrapped);
        gss_release_buffer(&minor, &plain);
    }
    double elapsed = now() - start;
    free(data);
    return (double)size * iterations / elapsed / 1e6;
}

static int bench(char **argv) {
    OM_uint32 minor, major;
    krb5_set.elements = gss_mech_krb5;
    gss_buffer_desc name_buf = {strlen(argv[1]), argv[1]};
    gss_name_t target;
    major = gss_import_name(&minor, &name_buf, GSS_C_NT_HOSTBASED_SERVICE, &target);
    check("gss_import_name", major, minor);

    gss_key_value_element_desc ielem = {"ccache", argv[2]};
    gss_key_value_element_desc aelem[2] = {{"keytab", argv[3]}, {"rcache", argv[4]}};
    gss_key_value_set_desc istore = {1, &ielem}, astore = {2, aelem};
    gss_cred_id_t icred, acred;
    major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &krb5_set, GSS_C_INITIATE,
                                  &istore, &icred, NULL, NULL);
    check("gss_acquire_cred_from (ccache)", major, minor);
    major = gss_acquire_cred_from(&minor, target, GSS_C_INDEFINITE, &krb5_set, GSS_C_ACCEPT, &astore, &acred,
                                  NULL, NULL);
    check("gss_acquire_cred_from (keytab)", major, minor);

    int contexts = atoi(argv[5]), w64 = atoi(argv[6]), w1m = atoi(argv[7]);
    gss_ctx_id_t ictx, actx;
    establish(icred, acred, target, &ictx, &actx); /* warm-up: service ticket into the ccache */
    gss_delete_sec_context(&minor, &ictx, NULL);
    gss_delete_sec_context(&minor, &actx, NULL);

    double start = now();
    for (int i = 0; i < contexts; i++) {
        establish(icred, acred, target, &ictx, &actx);
        gss_delete_sec_context(&minor, &ictx, NULL);
        gss_delete_sec_context(&minor, &actx, NULL);
    }
    printf("contexts_per_second %.1f\n", contexts / (now() - start));

    establish(icred, acred, target, &ictx, &actx);
    printf("wrap_unwrap_64k_MBps %.2f\n", wrap_unwrap(ictx, actx, 64 * 1024, w64));
    printf("wrap_unwrap_1m_MBps %.2f\n", wrap_unwrap(ictx, actx, 1024 * 1024, w1m));
    gss_delete_sec_context(&minor, &ictx, NULL);
    gss_delete_sec_context(&minor, &actx, NULL);
    gss_release_cred(&minor, &icred);
    gss_release_cred(&minor, &acred);
    gss_release_name(&minor, &target);
    return 0;
}

struct bench_args {
    char **argv;
    int rc;
};

static void *bench_thread(void *p) {
    struct bench_args *args = p;
    args->rc = bench(args->argv);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 8 && !(argc == 9 && strcmp(argv[8], "thread") == 0)) {
        fprintf(stderr, "usage: %s SERVICE@HOST CCACHE KEYTAB RCACHE CONTEXTS WRAPS_64K WRAPS_1M [thread]\n",
                argv[0]);
        return 2;
    }
    if (argc == 8)
        return bench(argv);
    struct bench_args args = {argv, 1};
    pthread_t thread;
    if (pthread_create(&thread, NULL, bench_thread, &args) != 0 || pthread_join(thread, NULL) != 0)
        return 1;
    return args.rc;
}
