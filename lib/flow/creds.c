// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/flow credentials: insecure, or TLS with the gRPC core's own SSL
 * credentials (server-authenticated; client certificates optional).
 */
#include "flow.h"
#include "log.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>

static int read_pem(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long len;
	int err = 0;

	if (!f)
		return log_err(-errno, "open %s", path);
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		err = log_err(-errno, "size of %s", path);
		goto out;
	}
	buf = malloc(len + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	if (fread(buf, 1, len, f) != (size_t)len) {
		err = log_err(-EIO, "read %s", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return err;
}

static bool tls_set(const struct flow_tls *t)
{
	return t && (t->ca_file || t->cert_file || t->key_file);
}

int flow_channel_creds(const struct flow_tls *tls, struct grpc_channel_credentials **out)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	int err = 0;

	if (!tls_set(tls)) {
		*out = grpc_insecure_credentials_create();
		return *out ? 0 : -ENOMEM;
	}
	if ((tls->cert_file != NULL) != (tls->key_file != NULL))
		return log_err(-EINVAL, "TLS client certificate needs both a cert and a key file");
	if (tls->ca_file && (err = read_pem(tls->ca_file, &ca)))
		goto out;
	if (tls->cert_file &&
	    ((err = read_pem(tls->cert_file, &cert)) || (err = read_pem(tls->key_file, &key))))
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	*out = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	if (!*out)
		err = log_err(-EINVAL, "TLS channel credentials refused");
out:
	free(ca);
	free(cert);
	free(key);
	return err;
}

int flow_server_creds(const struct flow_tls *tls, struct grpc_server_credentials **out)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	int err = 0;

	if (!tls_set(tls)) {
		*out = grpc_insecure_server_credentials_create();
		return *out ? 0 : -ENOMEM;
	}
	if (!tls->cert_file || !tls->key_file)
		return log_err(-EINVAL, "TLS server needs --tls-cert and --tls-key");
	if ((err = read_pem(tls->cert_file, &cert)) || (err = read_pem(tls->key_file, &key)))
		goto out;
	if (tls->ca_file && (err = read_pem(tls->ca_file, &ca)))
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	*out = grpc_ssl_server_credentials_create_ex(
		ca, &pair, 1,
		ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY :
		     GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		NULL);
	if (!*out)
		err = log_err(-EINVAL, "TLS server credentials refused (%s)", tls->cert_file);
out:
	free(ca);
	free(cert);
	free(key);
	return err;
}
