/**
 * Node's codes for a server certificate that fails verification (the tls module's
 * X509 error codes, plus the host name check's). They are not errno-style names, so
 * they are recognised by this list.
 */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isTlsVerifyCode(code: string): boolean {
  return TLS_VERIFY_CODES.has(code);
}

/**
 * One line for a certificate the server presented and this machine does not accept,
 * with the fix for its kind: a CA it does not know (--ca-bundle), a name that does not
 * match (--endpoint), or a date out of range (the server's or this machine's clock).
 */
export function describeTlsError(code: string, endpoint: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    return `the TLS certificate of ${endpoint} is not issued for its host name (${code}): use the name the certificate is issued for in --endpoint`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `the TLS certificate of ${endpoint} is out of its validity dates (${code}): renew it on the server, or correct this machine's clock`;
  }
  return (
    `cannot verify the TLS certificate of ${endpoint} (${code}): if the server's certificate is signed by a private CA, ` +
    'give that CA\'s certificate with --ca-bundle FILE'
  );
}
