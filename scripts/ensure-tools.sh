#!/usr/bin/env bash
# Debian tools the tests and benchmarks compare against, installed when missing and we are
# root with apt-get; otherwise whatever needs them skips, saying what to install.
#   scripts/ensure-tools.sh          vipsthumbnail (libvips-tools): the fidelity reference;
#                                    ffmpeg (with zscale): the HDR video tone-mapping reference;
#                                    qpdf: linearizes the big PDFs the reading-in-place tests make
#                                    promtool (prometheus): checks and unit-tests the alert rules
#                                    of deploy/kubernetes (installed without its recommended
#                                    node exporter; the tests run no Prometheus server)
#   scripts/ensure-tools.sh --bench  also tjbench (libjpeg-turbo-progs), gif2webp and img2webp
#                                    (webp), dcraw_emu (libraw-bin) and pdftoppm
#                                    (poppler-utils): bench/
#   scripts/ensure-tools.sh --image  only podman, buildah, runc and debootstrap (the packages,
#                                    without recommendations): scripts/build-image.sh, which
#                                    builds and runs Dockerfile.worker without Docker
set -uo pipefail
declare -A packages=([vipsthumbnail]=libvips-tools [ffmpeg]=ffmpeg [promtool]=prometheus
                     [qpdf]=qpdf)
# Packages installed without their recommendations.
declare -A lean=([prometheus]=1)
if [ "${1:-}" = "--bench" ]; then
  packages[tjbench]=libjpeg-turbo-progs
  packages[gif2webp]=webp
  packages[img2webp]=webp
  packages[dcraw_emu]=libraw-bin
  packages[pdftoppm]=poppler-utils
fi
if [ "${1:-}" = "--image" ]; then
  # Rootful podman with the kernel's overlayfs and `--network none`/host: no fuse-overlayfs,
  # slirp4netns or uidmap needed; runc because crun refuses this host's hybrid cgroups.
  packages=([podman]=podman [buildah]=buildah [runc]=runc [debootstrap]=debootstrap)
  lean=([podman]=1 [buildah]=1 [runc]=1 [debootstrap]=1)
fi
missing=()
full=()
bare=()
for tool in "${!packages[@]}"; do
  command -v "$tool" >/dev/null && continue
  package=${packages[$tool]}
  missing+=("$package")
  if [ -n "${lean[$package]:-}" ]; then bare+=("$package"); else full+=("$package"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-tools: installing ${missing[*]}" >&2
  (apt-get update -qq \
    && { [ ${#full[@]} -eq 0 ] \
         || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${full[@]}"; } \
    && { [ ${#bare[@]} -eq 0 ] \
         || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
              "${bare[@]}"; }) \
    >/dev/null 2>&1 || echo "ensure-tools: could not install ${missing[*]}; what needs them will skip" >&2
else
  echo "ensure-tools: missing ${missing[*]}; what needs them will skip" >&2
fi
exit 0
