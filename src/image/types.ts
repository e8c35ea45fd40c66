/** What the executor hands to output writers: the OCI shapes (src/oci/types.ts), re-exported. */

export { MEDIA_TYPES, OCI_MEDIA_TYPES, type Descriptor, type OciManifest, type OciIndex, type LayerDescriptor, type LayerBlob, type BuiltImage } from "../oci/types.ts";

/** A problem that does not stop the build, about a config key: shown at the key's file:line:column when known. */
export interface KeyedWarning {
  key: (string | number)[];
  text: string;
}
