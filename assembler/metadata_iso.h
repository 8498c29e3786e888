/* Metadata drives for `kiln run qemu`: small ISO9660 images (Rock Ridge and
 * Joliet, so names keep their case and dashes) attached as read-only
 * CD-ROMs, made with xorriso.
 *   config      LinuxKit's --data/--data-file: one file named `config`,
 *               read by LinuxKit's metadata package (cdrom provider).
 *   cidata      cloud-init NoCloud: volume label `cidata`, files user-data,
 *               meta-data (and network-config, vendor-data) at the root.
 *   config-2    OpenStack config drive: volume label `config-2`, the tree
 *               openstack/latest/user_data, meta_data.json, ... */
#ifndef KILN_METADATA_ISO_H
#define KILN_METADATA_ISO_H

#include <stddef.h>

#include "error.h"

/* Writes OUT: an ISO holding DATA (LEN bytes) as the file `config`, volume
 * label `config`.  Atomic (temp name + rename). */
int metadata_iso_config(const char *out, const void *data, size_t len, struct kiln_error **err);

/* Writes OUT: an ISO with volume label LABEL holding the tree under DIR. */
int metadata_iso_dir(const char *out, const char *label, const char *dir, struct kiln_error **err);

/* Writes OUT: a NoCloud `cidata` ISO.  SOURCE is a directory (its files as
 * they are; a missing meta-data is generated) or a file (becomes user-data).
 * The generated meta-data says `instance-id: INSTANCE_ID` and
 * `local-hostname: HOSTNAME` (HOSTNAME may be NULL: INSTANCE_ID). */
int metadata_iso_cidata(const char *out, const char *source, const char *instance_id,
			const char *hostname, struct kiln_error **err);

#endif
