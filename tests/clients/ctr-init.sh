# ctr-init.sh: the container's set-up (tests/common/container.rs), run by sh as root of fresh
# user, mount, pid and network namespaces (util-linux unshare, with newuidmap/newgidmap having
# mapped the owner's subordinate ids), as a runtime such as crun does before the program runs:
# an empty root filesystem, the given host files bind-mounted into it, /proc of the new pid
# namespace, loopback up; then the program, chrooted, as UID:GID with no supplementary group.
#
#   sh ctr-init.sh ROOT [--proc] [--ro HOST INSIDE | --rw HOST INSIDE]... -- UID GID PROGRAM [ARGS...]
set -eu
root=$1
shift
mount -t tmpfs -o mode=0755 tmpfs "$root"
while [ "$1" != -- ]; do
    case $1 in
        --proc)
            mkdir -p "$root/proc"
            mount -t proc proc "$root/proc"
            shift
            ;;
        --ro | --rw)
            mkdir -p "$(dirname "$root$3")"
            : >"$root$3"
            mount --bind "$2" "$root$3"
            if [ "$1" = --ro ]; then mount -o remount,bind,ro "$root$3"; fi
            shift 3
            ;;
        *)
            echo "ctr-init.sh: unknown argument $1" >&2
            exit 2
            ;;
    esac
done
shift
uid=$1 gid=$2
shift 2
ip link set lo up
exec unshare --root="$root" --setgid="$gid" --setuid="$uid" -- "$@"
