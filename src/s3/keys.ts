// Small codecs for what S3 puts in headers and listings.

/**
 * The x-amz-copy-source value for a key: the bucket, then the key URL-encoded
 * with its slashes kept. Headers cannot carry raw non-ASCII bytes, and servers
 * URL-decode the value, so + # ? % space and UTF-8 must all be escaped.
 */
export function encodeCopySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}

/** An ETag without quotes or weak marker, for comparing ETags from different answers. */
export function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/**
 * One form of an ETag whatever the server sent: quoted, without a weak marker ('' stays
 * ''). Chunks are cached by ETag, and a file fetched ahead by its listed ETag must be
 * found by the one its HEAD gave, from a server that quotes only one of them.
 */
export function canonicalEtag(etag: string): string {
  return etag === '' ? '' : quoteEtag(normalizeEtag(etag));
}

/**
 * An ETag as If-Match needs it: quoted. Callers may hold ETags from servers that
 * send them bare; a quoted one passes unchanged.
 */
export function quoteEtag(etag: string): string {
  const trimmed = etag.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/"') || trimmed === '*') return trimmed;
  return `"${trimmed}"`;
}

/**
 * Decodes a key or prefix of a listing requested with encoding-type=url. S3 form-
 * encodes them (a space is "+", a "+" is "%2B"); servers that encode spaces as
 * "%20" decode the same way.
 */
export function decodeListingKey(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}
