#!/usr/bin/env bash
# npm run test:vagrant: the opt-in test of the Vagrant cluster (docs/vagrant.md).
# Not part of `npm test` or .ci/run: it boots real VMs (minutes under
# software emulation). As root on Debian 12:
#   installs what is missing (scripts/vagrant-deps), builds and stages
#   flotilla, starts libvirt if it is not running, builds the box if missing,
#   `vagrant up` of 3 VMs, checks every VM in `flotctl list-machines` and a
#   healthy 3-member etcd, starts probe@1..3 (a template) and checks with
#   systemctl inside the VMs that each VM runs one, `virsh destroy`s the
#   third VM, and checks that its instance is active on another VM within
#   agent_ttl + 10 s. It always ends with `vagrant destroy
#   -f`, removes the networks, volumes and pool it made, and stops the
#   libvirt daemons it started: nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
export VAGRANT_CWD=$repo/vagrant
export FLOTILLA_VMS=3
export FLOTILLA_AGENT_TTL=${FLOTILLA_AGENT_TTL:-10}
uri=qemu:///system
work=$(mktemp -d /tmp/flotilla-vagrant-test.XXXXXX)
t0=$(date +%s)
passed=0 failed=0 pool_made=0 libvirt_up=0
declare -A took=()

say() { echo "test:vagrant [$(($(date +%s) - t0))s] $*" >&2; }
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
virsh() { command virsh -q -c "$uri" "$@"; }
vm() { ssh -F "$work/ssh_config" -o LogLevel=ERROR -o ControlMaster=auto -o "ControlPath=$work/%n.ctl" -o ControlPersist=900 -o ConnectTimeout=20 "$@"; }

cleanup() {
  local rc=$? t
  set +e
  trap - EXIT INT TERM
  say "cleaning up"
  # The SSH connection masters (ControlPersist) end with -O exit.
  for h in node-1 node-2 node-3; do
    [ -S "$work/$h.ctl" ] && vm -O exit "$h" 2>/dev/null
  done
  if [ "$libvirt_up" = 1 ]; then
    t=$(date +%s)
    timeout 600 vagrant destroy -f >"$work/destroy.log" 2>&1 || { say "vagrant destroy failed:"; tail -n 20 "$work/destroy.log" >&2; }
    took[destroy]=$(($(date +%s) - t))
    # Whatever vagrant left: our domains, networks, volumes (and the pool if we made it).
    for d in $(virsh list --all --name | grep '^flotilla-node-'); do
      virsh destroy "$d" >/dev/null 2>&1; virsh undefine "$d" --remove-all-storage >/dev/null 2>&1
    done
    for n in flotilla-net flotilla-mgmt; do
      if virsh net-info "$n" >/dev/null 2>&1; then
        virsh net-destroy "$n" >/dev/null 2>&1; virsh net-undefine "$n" >/dev/null 2>&1
      fi
    done
    if virsh pool-info default >/dev/null 2>&1; then
      for v in $(virsh vol-list default | awk '{print $1}' | grep -E '^flotilla'); do virsh vol-delete "$v" --pool default >/dev/null; done
      if [ "$pool_made" = 1 ]; then virsh pool-destroy default >/dev/null; virsh pool-undefine default >/dev/null; fi
    fi
    left=$(virsh list --all --name | grep -c '^flotilla-'; true)
    [ "$left" = 0 ] || not_ok "domains left after destroy: $left"
  fi
  bash scripts/vagrant-libvirt stop
  rm -rf "$work"
  echo
  for k in box up machines probes failover destroy; do [ -n "${took[$k]:-}" ] && echo "time $k: ${took[$k]} s"; done
  echo "time total: $(($(date +%s) - t0)) s"
  [ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ] && exit 0
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "test:vagrant needs root (libvirt, debootstrap)" >&2; exit 1; }
say "system packages"
bash scripts/vagrant-deps
say "building and staging flotilla"
bash vagrant/stage.sh
say "libvirt"
bash scripts/vagrant-libvirt start
libvirt_up=1
virsh pool-info default >/dev/null 2>&1 || pool_made=1
for d in $(virsh list --all --name | grep '^flotilla-node-' || true); do
  say "removing $d, left by an earlier run"
  virsh destroy "$d" >/dev/null 2>&1 || true
  virsh undefine "$d" --remove-all-storage >/dev/null 2>&1 || true
done
rm -rf "$VAGRANT_CWD/.vagrant/machines"

say "box"
t=$(date +%s)
bash vagrant/box/build.sh
took[box]=$(($(date +%s) - t))

say "vagrant up (3 VMs)"
t=$(date +%s)
if vagrant up --provider libvirt >"$work/up.log" 2>&1; then
  took[up]=$(($(date +%s) - t))
  ok "vagrant up of 3 VMs in ${took[up]} s"
else
  tail -n 40 "$work/up.log" >&2
  not_ok "vagrant up"
  exit 1
fi
vagrant ssh-config >"$work/ssh_config"

# Every VM registered: list-machines on node-1 shows three.
t=$(date +%s)
machines=0
for _ in $(seq 1 120); do
  machines=$(vm node-1 flotctl list-machines --no-legend 2>/dev/null | grep -c . || true)
  [ "$machines" -ge 3 ] && break
  sleep 2
done
took[machines]=$(($(date +%s) - t))
echo "\$ vagrant ssh node-1 -c 'flotctl list-machines'"
vagrant ssh node-1 -c 'flotctl list-machines' 2>/dev/null || true
if [ "$machines" = 3 ]; then ok "flotctl list-machines lists the 3 VMs"; else not_ok "flotctl list-machines lists $machines machines, not 3"; fi

members=$(vm node-1 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 member list' 2>/dev/null | grep -c started || true)
health=$(vm node-1 'ETCDCTL_API=3 etcdctl --endpoints=http://10.231.7.11:2379,http://10.231.7.12:2379,http://10.231.7.13:2379 endpoint health' 2>&1 | grep -c 'is healthy' || true)
if [ "$members" = 3 ] && [ "$health" = 3 ]; then ok "etcd: 3 members, 3 healthy"; else not_ok "etcd: $members members started, $health healthy"; fi

# A template with an instance on every VM (the engine places each on the least-loaded machine).
cat >"$work/probe@.service" <<'UNIT'
[Unit]
Description=flotilla vagrant test probe %i

[Service]
ExecStart=/bin/sleep infinity
UNIT
vm node-1 'mkdir -p /tmp/probe && cat >/tmp/probe/probe@.service' <"$work/probe@.service"
vm node-1 'cd /tmp/probe && flotctl start probe@1.service probe@2.service probe@3.service'
t=$(date +%s)
declare -A on=()
for _ in $(seq 1 90); do
  on=()
  for h in node-1 node-2 node-3; do
    on[$h]=$(vm "$h" "systemctl list-units 'probe@*' --state=active --no-legend --plain" 2>/dev/null | awk '{print $1}' | paste -sd, -)
  done
  [[ ${on[node-1]} =~ ^probe@[0-9].service$ && ${on[node-2]} =~ ^probe@[0-9].service$ && ${on[node-3]} =~ ^probe@[0-9].service$ ]] && break
  sleep 2
done
took[probes]=$(($(date +%s) - t))
echo "active probes (systemctl in each VM): node-1=${on[node-1]} node-2=${on[node-2]} node-3=${on[node-3]}"
if [[ ${on[node-1]} =~ ^probe@[0-9].service$ && ${on[node-2]} =~ ^probe@[0-9].service$ && ${on[node-3]} =~ ^probe@[0-9].service$ ]]; then
  ok "one probe@ instance active on every VM (${took[probes]} s)"
else
  not_ok "probe@ instances not one per VM after ${took[probes]} s"
  vm node-1 flotctl list-units >&2 || true
  exit 1
fi

# Machine death: the third VM goes away at once; its instance must be active
# on another VM within agent_ttl + 10 s.
victim=${on[node-3]}
limit=$((FLOTILLA_AGENT_TTL + 10))
vm -O exit node-3 2>/dev/null || true
say "virsh destroy flotilla-node-3 (it runs $victim)"
ms() { echo $(($(date +%s%N) / 1000000)); }
t=$(ms)
virsh destroy flotilla-node-3 >/dev/null
where=""
while :; do
  for h in node-1 node-2; do
    if [ "$(vm "$h" systemctl is-active "$victim" 2>/dev/null)" = active ]; then where=$h; break 2; fi
  done
  (($(ms) - t > (limit + 20) * 1000)) && break
  sleep 0.5
done
moved=$(($(ms) - t))
took[failover]=$((moved / 1000)).$((moved % 1000 / 100))
vm node-1 flotctl list-units || true
if [ -n "$where" ] && ((moved <= limit * 1000)); then
  ok "$victim active on $where ${took[failover]} s after virsh destroy (limit agent_ttl + 10 = $limit s)"
elif [ -n "$where" ]; then
  not_ok "$victim active on $where only after ${took[failover]} s (limit $limit s)"
else
  not_ok "$victim not active on node-1 or node-2 ${took[failover]} s after virsh destroy"
fi
if [ -z "$where" ] || ((moved > limit * 1000)); then
  for h in node-1 node-2; do
    echo "--- $h: journalctl -u flotillad (last 40 lines)"
    vm "$h" 'sudo journalctl -u flotillad --no-pager -n 40 -o short-precise' || true
  done
fi
