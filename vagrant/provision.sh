#!/usr/bin/env bash
# Makes a machine a flotilla node: the one provisioning path shared by the
# Vagrant VMs (vagrant/Vagrantfile) and flotilla-lab's nodes.
#
#   provision.sh --name NAME --ip ADDR [options]
#
#   --name NAME            host name (node-1, n1, ...); required unless --root
#   --ip ADDR              this node's address: flotillad's public_ip, and
#                          etcd's address when this node is an etcd member
#   --index N              node index (1-based; noted in flotilla.conf)
#   --etcd-peers A,B,C     addresses of the etcd members (static bootstrap,
#                          member names etcd-1, etcd-2, ... in that order);
#                          this node runs a member when --ip is one of them
#   --etcd-servers URLS    flotillad's etcd_servers (default: a member uses its
#                          own member, http://127.0.0.1:2379, as fleet used its
#                          local etcd; other nodes port 2379 of every peer)
#   --metadata k=v,k2=v2   flotillad's metadata
#   --agent-ttl S          flotillad's agent_ttl  (omitted: flotillad's default)
#   --engine-ttl S         flotillad's engine_ttl (omitted: flotillad's default)
#   --dns-listen HOST:PORT flotillad's dns_listen, the DNS front (omitted: off)
#   --conf KEY=VALUE       one more flotilla.conf line (repeatable), e.g. api_listen=...
#   --flotctl-env K=V      one more flotctl.env line (repeatable)
#   --service-line LINE    one more [Service] line in the drop-in (repeatable),
#                          e.g. ExecStartPre=...
#   --flotilla-dir DIR     the built checkout (dist/, node_modules/, units/) as
#                          the node sees it (default /opt/flotilla)
#   --node BIN             Node.js 20+ as the node sees it (default /usr/bin/node)
#   --dropin NAME          name of flotillad.service's drop-in (default checkout.conf)
#   --root DIR             write the files into the tree DIR (a node that is not
#                          booted yet, e.g. a lab overlay) and start nothing;
#                          default / : write, then enable and (re)start services
#
# What it writes (under --root):
#   /etc/hostname
#   /etc/systemd/system/flotillad.service          units/flotillad.service as is
#   /etc/systemd/system/flotillad.service.d/NAME   ExecStart= node DIR/dist/cli/flotillad.js,
#                                                  ConditionPathExists= on it
#   /etc/flotilla/flotilla.conf                    etcd_servers, public_ip, metadata, TTLs, dns_listen
#   /etc/flotilla/flotctl.env                      FLOTCTL_ENDPOINT= etcd_servers
#   /usr/local/bin/flotctl                         flotctl on the PATH, pointed at etcd_servers
#   /etc/default/etcd                              etcd members only
# Live (--root /), it then enables flotillad (and etcd on members, disabled on
# the others) and restarts them. Idempotent: run it again with new values.
set -euo pipefail

name="" ip="" index="" peers="" servers="" metadata="" agent_ttl="" engine_ttl="" dns_listen=""
extra_conf=() extra_env=() extra_service=()
dir=/opt/flotilla node=/usr/bin/node dropin=checkout.conf root=/
die() { echo "provision: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  opt=$1
  case $opt in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
  esac
  [ $# -ge 2 ] || die "$opt needs a value"
  case $opt in
    --name) name=$2 ;;
    --ip) ip=$2 ;;
    --index) index=$2 ;;
    --etcd-peers) peers=$2 ;;
    --etcd-servers) servers=$2 ;;
    --metadata) metadata=$2 ;;
    --agent-ttl) agent_ttl=$2 ;;
    --engine-ttl) engine_ttl=$2 ;;
    --dns-listen) dns_listen=$2 ;;
    --conf) extra_conf+=("$2") ;;
    --flotctl-env) extra_env+=("$2") ;;
    --service-line) extra_service+=("$2") ;;
    --flotilla-dir) dir=$2 ;;
    --node) node=$2 ;;
    --dropin) dropin=$2 ;;
    --root) root=$2 ;;
    *) die "unknown option $opt" ;;
  esac
  shift 2
done
[ -n "$ip" ] || die "--ip is required"
[ -n "$name" ] || [ "$root" != / ] || die "--name is required (it may be left out only with --root)"
[ -z "$name" ] || [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || die "--name $name: letters, digits, . and - only"
# systemd reads blanks, quotes, % and $ in a unit file's paths as syntax.
for p in "$dir" "$node"; do
  [[ $p =~ ^/[A-Za-z0-9/._+@-]*$ ]] || die "cannot name $p in a unit file: use a path of letters, digits and / . _ + @ -"
done
[[ $dropin =~ ^[A-Za-z0-9._-]+\.conf$ ]] || die "--dropin $dropin: a file name ending in .conf"
for kv in "${extra_conf[@]}" "${extra_env[@]}"; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*=[^$'\n']*$ ]] || die "$kv: KEY=VALUE on one line"
done
for l in "${extra_service[@]}"; do
  [[ $l =~ ^[A-Za-z]+=[^$'\n']*$ ]] || die "--service-line $l: Directive=value on one line"
done
[ -d "$root" ] || die "--root $root is not a folder"
root=${root%/}
live=0
[ -z "$root" ] && live=1

# etcd: members from --etcd-peers; this node is one when its address is listed.
member=0 cluster="" i=0 servers_from_peers=""
IFS=, read -r -a peer_list <<<"$peers"
for p in "${peer_list[@]}"; do
  [ -n "$p" ] || continue
  i=$((i + 1))
  cluster+="${cluster:+,}etcd-$i=http://$p:2380"
  [ "$p" = "$ip" ] && member=$i
  [ -n "$servers" ] || servers_from_peers+="${servers_from_peers:+,}http://$p:2379"
done
# A member talks to its own member only: a client connection to a member
# whose machine vanished (no RST, packets dropped) can hang a watch, and a
# member's own etcd dies with it anyway.
[ "$member" = 0 ] || servers_from_peers=http://127.0.0.1:2379
servers=${servers:-${servers_from_peers:-http://127.0.0.1:2379}}

unit_src=""
for u in "$root$dir/units/flotillad.service" "$(dirname "$0")/../units/flotillad.service"; do
  [ -r "$u" ] && unit_src=$u && break
done
[ -n "$unit_src" ] || die "no units/flotillad.service under $root$dir"

put() { # put PATH MODE < content
  local dest=$root$1
  mkdir -p "$(dirname "$dest")"
  cat >"$dest.tmp.$$"
  chmod "$2" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
}

[ -z "$name" ] || echo "$name" | put /etc/hostname 644
put /etc/systemd/system/flotillad.service 644 <"$unit_src"
put "/etc/systemd/system/flotillad.service.d/$dropin" 644 <<CONF
# Written by provision.sh: run the checkout's build instead of an installed
# /usr/local/bin/flotillad.
[Unit]
# Not built: the service is skipped (inactive), not restarted in a loop.
ConditionPathExists=$dir/dist/cli/flotillad.js

[Service]
ExecStart=
ExecStart=$node $dir/dist/cli/flotillad.js
$(printf '%s\n' "${extra_service[@]}")
CONF
{
  echo "# Written by provision.sh for ${name:-this node}${index:+ (node $index)}."
  echo "etcd_servers=$servers"
  echo "public_ip=$ip"
  echo "metadata=$metadata"
  [ -z "$agent_ttl" ] || echo "agent_ttl=$agent_ttl"
  [ -z "$engine_ttl" ] || echo "engine_ttl=$engine_ttl"
  [ -z "$dns_listen" ] || echo "dns_listen=$dns_listen"
  [ ${#extra_conf[@]} -eq 0 ] || printf '%s\n' "${extra_conf[@]}"
} | put /etc/flotilla/flotilla.conf 644
# For units that run flotctl (EnvironmentFile=, e.g. units/web-announce@.service).
{
  echo "FLOTCTL_ENDPOINT=$servers"
  [ ${#extra_env[@]} -eq 0 ] || printf '%s\n' "${extra_env[@]}"
} | put /etc/flotilla/flotctl.env 644
put /usr/local/bin/flotctl 755 <<WRAP
#!/bin/sh
# flotctl on the PATH (provision.sh); talks to this node's etcd_servers.
FLOTCTL_ENDPOINT=\${FLOTCTL_ENDPOINT:-$servers}
export FLOTCTL_ENDPOINT
exec $node $dir/dist/cli/flotctl.js "\$@"
WRAP
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sfn /etc/systemd/system/flotillad.service "$root/etc/systemd/system/multi-user.target.wants/flotillad.service"

if [ "$member" -gt 0 ]; then
  put /etc/default/etcd 644 <<ETCD
# Written by provision.sh: member etcd-$member of a static $i-member cluster.
ETCD_NAME=etcd-$member
ETCD_DATA_DIR=/var/lib/etcd/flotilla
ETCD_LISTEN_PEER_URLS=http://$ip:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$ip:2380
ETCD_LISTEN_CLIENT_URLS=http://$ip:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$ip:2379
ETCD_INITIAL_CLUSTER=$cluster
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=flotilla
ETCD
  ln -sfn /lib/systemd/system/etcd.service "$root/etc/systemd/system/multi-user.target.wants/etcd.service"
fi

[ "$live" = 1 ] || exit 0

hostname "$name" 2>/dev/null || true
if [ "$member" -gt 0 ]; then
  command -v etcd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client; }
  # --no-block: a member waits for a quorum, which the next VMs bring.
  systemctl daemon-reload
  systemctl enable etcd.service >/dev/null 2>&1 || true
  systemctl restart --no-block etcd.service
elif systemctl cat etcd.service >/dev/null 2>&1; then
  rm -f /etc/default/etcd
  systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi
if ! "$node" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "provision: $node is not Node.js 20+: flotillad will not start" >&2
fi
systemctl daemon-reload
systemctl enable flotillad.service >/dev/null 2>&1 || true
systemctl restart --no-block flotillad.service
echo "provision: $name ($ip) is a flotilla node; etcd member: $([ "$member" -gt 0 ] && echo "etcd-$member" || echo no); etcd_servers=$servers"
