export interface RunningRgw {
  /** e.g. http://127.0.0.1:40123 (path-style, region us-east-1, credentials S3RVER/S3RVER) */
  endpoint: string;
  /**
   * With `ldap: true`: an RGW LDAP token (base64 JSON naming ldapuser/ldappass) to
   * use as the access key id, with any secret, blank included.
   */
  ldapToken?: string;
  /** Stops exactly the daemons this start made and resolves once they have exited. */
  stop(): Promise<void>;
}

export interface StartRgwOptions {
  /** Also run slapd and turn RGW's LDAP auth on. */
  ldap?: boolean;
  /** How long `up` may take; default 90 s (about 15 s is usual). */
  timeoutMs?: number;
}

/**
 * Starts a single-node Ceph RGW (test/servers/ceph-rgw.sh) with its state in `dir`,
 * on free loopback ports. Needs the Debian packages (`bash test/servers/ceph-rgw.sh
 * install`, as root).
 */
export function startRgw(dir: string, options?: StartRgwOptions): Promise<RunningRgw>;
