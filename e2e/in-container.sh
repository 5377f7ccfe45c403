#!/bin/bash
# The end-to-end test, run as root by e2e.service inside a freshly booted Debian container
# whose PID 1 is systemd (e2e/run starts it). /srv/e2e holds the .deb and the helpers.
# Every check prints `ok - …` or `FAIL - …`; the exit status is the number of failures.
set -uo pipefail

E2E=/srv/e2e
CONFIG=/etc/portbinder/portbinder.toml
failures=0
checks=0
phase_start=$(date +%s%N)

ok() { checks=$((checks + 1)); echo "ok - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: ok if COMMAND (a program or a function here) succeeds.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what"; else fail "$what: $(tail -n 5 <<<"$out")"; fi
}
# same VALUE EXPECTED DESCRIPTION
same() {
    if [ "$1" = "$2" ]; then ok "$3"; else fail "$3: got '$1', expected '$2'"; fi
}
phase() {
    local now
    now=$(date +%s%N)
    echo "# $* (previous phase: $(((now - phase_start) / 1000000)) ms)"
    phase_start=$now
}
# wait_for SECONDS COMMAND...: retries every 0.1 s.
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
not() { ! "$@"; }
now() { echo $(($(date +%s) - 1)); }
main_pid() { systemctl show -P MainPID portbinder.service; }
prop() { systemctl show -P "$1" portbinder.service; }
# status_field PID KEY: a field of /proc/PID/status, blanks squeezed.
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
# The sockets a fresh grant hands to e2e-app, as "socket:[INODE] socket:[INODE] ".
granted() {
    runuser -u e2e-app -- portbinder exec http -- sh -c 'readlink /proc/self/fd/3 /proc/self/fd/4' | tr '\n' ' '
}
# logged SINCE REGEX: a line the daemon logged since SINCE (epoch seconds) matches REGEX.
logged() { journalctl --no-pager -o cat --since "@$1" -t portbinder | grep -qE "$2"; }
restarted() { [ "$(main_pid)" != "$1" ] && [ "$(main_pid)" != 0 ] && systemctl is-active --quiet portbinder; }
get() { python3 "$E2E/client.py" get "$1"; }
# The app as e2e-app through portbinder exec, in a session of its own.
app_start() {
    setsid runuser -u e2e-app -- portbinder exec http -- python3 "$E2E/app.py" >/tmp/app.log 2>&1 &
    app=$!
}
app_stop() {
    kill -- "-$app"
    wait "$app" 2>/dev/null
}
# A client sending GETs to 127.0.0.1:80 and [::1]:80 back to back while something happens.
hammer_start() {
    rm -f /tmp/stop-hammer
    python3 "$E2E/client.py" hammer /tmp/stop-hammer >/tmp/hammer.json &
    hammer=$!
    sleep 0.3
}
# hammer_stop DESCRIPTION: no request may have failed, and both sockets answered.
hammer_stop() {
    touch /tmp/stop-hammer
    wait "$hammer"
    local result
    result=$(cat /tmp/hammer.json)
    if python3 -c 'import json, sys; r = json.load(sys.stdin); sys.exit(not (r["failed"] == 0 and r["ok"] >= 10 and len(r["answers"]) == 2))' <<<"$result"; then
        ok "$1: no failed request ($result)"
    else
        fail "$1: $result"
    fi
}

phase "install the package"
check "dpkg -i" dpkg -i "$E2E"/portbinder_*.deb
check "sysusers created the user portbinder" getent passwd portbinder
check "the configuration is a conffile" grep -qx /etc/portbinder/portbinder.toml /var/lib/dpkg/info/portbinder.conffiles
check "man pages installed" test -s /usr/share/man/man8/portbinder.8.gz -a -s /usr/share/man/man5/portbinder.toml.5.gz
check "preload library installed" test -s /usr/lib/portbinder/libportbinder_preload.so
same "$(systemctl is-enabled portbinder.service)" disabled "not enabled before it is configured"
same "$(systemctl is-active portbinder.service)" inactive "not started before it is configured"

phase "configure and start as the README says"
groupadd e2e-web
useradd --no-create-home --shell /bin/sh --groups e2e-web e2e-app
useradd --no-create-home --shell /bin/sh e2e-other
cat >"$CONFIG" <<'EOF'
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
group = "e2e-web"
EOF
started=$(now)
check "portbinder check" portbinder check
check "systemctl enable --now" systemctl enable --now portbinder
same "$(systemctl is-active portbinder)" active "active (Type=notify: READY=1 arrived)"
same "$(prop StatusText)" "serving 1 binding: 0 grants, 0 denials" "STATUS= from the daemon"
same "$(prop NFileDescriptorStore)" 2 "both sockets in the fd store"
pid=$(main_pid)
uid=$(id -u portbinder)
same "$(status_field "$pid" Uid)" "$uid $uid $uid $uid" "runs as portbinder"
for set in CapInh CapPrm CapEff CapAmb; do
    same "$(status_field "$pid" $set)" 0000000000000000 "$set is empty"
done
same "$(status_field "$pid" NoNewPrivs)" 1 "no_new_privs"
check "the drop was verified" wait_for 5 logged "$started" '^event=drop result=verified uid='"$uid"' '
echo "# $(journalctl --no-pager -o cat -t portbinder _PID="$pid" | grep '^event=drop')"
same "$(stat -c '%A %U %G' /run/portbinder /run/portbinder/http.sock | tr '\n' ' ')" \
    "drwxr-xr-x portbinder portbinder srw-rw---- portbinder e2e-web " \
    "socket directory and socket file: owners and modes"

phase "an unprivileged app serves port 80"
app_start
check "app answers HTTP on 127.0.0.1:80" wait_for 10 get 127.0.0.1
answer=$(get ::1)
case "$answer" in
*"uid=$(id -u e2e-app)"*) ok "app answers on [::1]:80 as e2e-app: $answer" ;;
*) fail "app on [::1]:80: '$answer' $(cat /tmp/app.log)" ;;
esac
before=$(granted)
same "$(wc -w <<<"$before")" 2 "a grant hands out both sockets: $before"
check "root is denied by the daemon" not portbinder exec http -- true
check "e2e-other is refused by the socket file" not runuser -u e2e-other -- portbinder exec http -- true
check "grant line in the journal" wait_for 5 logged "$started" 'event=grant binding=http fds=2 .* user=e2e-app '
check "denial line in the journal" wait_for 5 logged "$started" 'event=deny binding=http .* uid=0 .*reason='
check "the audit lines are authpriv" wait_for 5 sh -c \
    "journalctl --no-pager -o json -t portbinder | grep 'event=grant' | grep -q '\"SYSLOG_FACILITY\":\"10\"'"
check "STATUS= counts them" wait_for 10 sh -c \
    "systemctl show -P StatusText portbinder | grep -qE 'serving 1 binding: [1-9][0-9]* grants, 1 denials'"

phase "systemctl reload: who may fetch changes on the same sockets; what needs a restart is refused"
# The sockets e2e-other is granted, as "socket:[INODE] socket:[INODE] ".
granted_other() {
    runuser -u e2e-other -- portbinder exec http -- sh -c 'readlink /proc/self/fd/3 /proc/self/fd/4' | tr '\n' ' '
}
cp "$CONFIG" /tmp/before-reload.toml
old=$(main_pid)
printf 'mode = "0666"\nallow_users = ["e2e-other"]\n' >>"$CONFIG"
since=$(now)
first_reload=$since
# Both changes, there and back, each logged once: the same line twice.
applied_twice() {
    [ "$(journalctl --no-pager -o cat --since "@$first_reload" -t portbinder | grep -c '^event=reload signal=SIGHUP result=applied ')" -eq 2 ]
}
check "systemctl reload" systemctl reload portbinder
check "the reload line in the journal" wait_for 10 logged "$since" \
    '^event=reload signal=SIGHUP result=applied changes="binding `http`: allow_users, allow_groups; binding `http`: mode"$'
check "STATUS= says so" wait_for 10 sh -c \
    "systemctl show -P StatusText portbinder | grep -q '^reload applied 2 changes; serving 1 binding: '"
same "$(main_pid)" "$old" "the same daemon"
same "$(granted_other)" "$before" "e2e-other is granted now, the very same sockets"
same "$(granted)" "$before" "and e2e-app still"
printf '[binding.alt]\nlisten = ["127.0.0.1:8080"]\ngroup = "e2e-web"\n' >>"$CONFIG"
since=$(now)
check "systemctl reload (a new binding)" systemctl reload portbinder
check "refused, with the reason" wait_for 10 logged "$since" \
    '^event=reload signal=SIGHUP result=refused change="binding `alt`: added" reason=".*: restart to apply"$'
check "STATUS= says it was refused" wait_for 10 sh -c \
    "systemctl show -P StatusText portbinder | grep -q '^reload refused: binding .alt.: added: restart to apply; '"
check "no socket file for it" test ! -e /run/portbinder/alt.sock
same "$(granted_other)" "$before" "the rules in force are unchanged"
cp /tmp/before-reload.toml "$CONFIG"
check "systemctl reload (back)" systemctl reload portbinder
check "applied" wait_for 10 applied_twice
check "e2e-other is refused by the socket file again" not runuser -u e2e-other -- portbinder exec http -- true
same "$(granted)" "$before" "the same sockets after three reloads"

phase "systemctl restart keeps the sockets"
hammer_start
old=$(main_pid)
since=$(now)
check "systemctl restart" systemctl restart portbinder
check "restarted and ready" wait_for 10 restarted "$old"
same "$(granted)" "$before" "a new grant hands out the same sockets"
check "the new daemon adopted both" wait_for 5 logged "$since" 'event=start binding=http .* adopted=2( |$)'
hammer_stop "restart"

phase "kill -9: Restart=on-failure brings the same sockets back"
hammer_start
old=$(main_pid)
kill -9 "$old"
check "restarted after SIGKILL" wait_for 15 restarted "$old"
same "$(granted)" "$before" "a grant after the crash hands out the same sockets"
check "counted as an automatic restart" test "$(prop NRestarts)" -ge 1
hammer_stop "kill -9"

phase "a configuration error: restarts fail, the stored sockets wait for the fix"
hammer_start
cp "$CONFIG" /tmp/good.toml
echo 'typo = 1' >>"$CONFIG"
check "the restart fails" not systemctl restart portbinder
check "systemd retries it" wait_for 5 sh -c 'systemctl show -P SubState portbinder | grep -qx auto-restart'
same "$(prop NFileDescriptorStore)" 2 "the sockets stay in the store meanwhile"
since=$(now)
cp /tmp/good.toml "$CONFIG"
check "back once the file is fixed" wait_for 15 systemctl is-active --quiet portbinder
same "$(granted)" "$before" "with the same sockets"
check "the error was logged" logged "$started" 'unknown field `typo`'
hammer_stop "configuration error"

phase "a new binding is stored, a removed one leaves the store"
cat >>"$CONFIG" <<'EOF'
[binding.alt]
listen = ["127.0.0.1:8080"]
group = "e2e-web"
EOF
systemctl restart portbinder
same "$(prop NFileDescriptorStore)" 3 "the new binding's socket joins the store"
sed -i '/^\[binding.alt\]/,$d' "$CONFIG"
since=$(now)
systemctl restart portbinder
same "$(prop NFileDescriptorStore)" 2 "the removed binding's socket left the store"
check "the unused socket is logged" wait_for 5 logged "$since" 'event=unused-fd .*name=alt'
check "FDSTOREREMOVE logged" wait_for 5 logged "$since" 'event=fdstore fds=0 removed=alt$'
same "$(granted)" "$before" "http still hands out the same sockets"

phase "package upgrade (the same version again) restarts it with the same sockets"
hammer_start
old=$(main_pid)
check "dpkg -i again" dpkg -i "$E2E"/portbinder_*.deb
check "restarted by the postinst" wait_for 10 restarted "$old"
same "$(granted)" "$before" "same sockets after the upgrade"
hammer_stop "upgrade"
check "no errors logged since the first start" not logged "$started" 'event=error|result=(failed|unverified)'

phase "socket activation: systemd binds, the service has no capability and no network"
app_stop
systemctl disable --now portbinder
mkdir -p /etc/systemd/system/portbinder.service.d /etc/systemd/system/portbinder@http.socket.d
cp /usr/share/doc/portbinder/examples/socket-activation.conf /etc/systemd/system/portbinder.service.d/
# Applied after socket-activation.conf (drop-ins go in lexical order): e2e-web, not www-data.
printf '[Service]\nSupplementaryGroups=\nSupplementaryGroups=e2e-web\n' \
    >/etc/systemd/system/portbinder.service.d/zz-e2e-groups.conf
printf '[Socket]\nListenStream=0.0.0.0:80\nListenStream=[::]:80\n' \
    >/etc/systemd/system/portbinder@http.socket.d/listen.conf
systemctl daemon-reload
since=$(now)
check "portbinder@http.socket starts" systemctl enable --now portbinder@http.socket
check "the service starts" systemctl start portbinder
pid=$(main_pid)
for set in CapInh CapPrm CapEff CapAmb CapBnd; do
    same "$(status_field "$pid" $set)" 0000000000000000 "socket-activated: $set is empty"
done
check "socket-activated: in a network namespace of its own" \
    test "$(readlink /proc/"$pid"/ns/net)" != "$(readlink /proc/1/ns/net)"
check "socket-activated: adopted both sockets" wait_for 5 logged "$since" 'event=start binding=http .* adopted=2( |$)'
same "$(prop StatusText)" "serving 1 binding: 0 grants, 0 denials" "socket-activated: READY=1 and STATUS="
same "$(prop NFileDescriptorStore)" 0 "socket-activated: nothing stored"
activated=$(granted)
app_start
check "socket-activated: the app answers HTTP on port 80" wait_for 10 get 127.0.0.1
systemctl restart portbinder
same "$(granted)" "$activated" "socket-activated: the same sockets after a restart"
app_stop
systemctl disable --now portbinder.service portbinder@http.socket
rm -r /etc/systemd/system/portbinder.service.d /etc/systemd/system/portbinder@http.socket.d
systemctl daemon-reload

phase "purge"
check "back to the plain unit" systemctl enable --now portbinder
check "dpkg --purge" dpkg --purge portbinder
same "$(systemctl show -P LoadState portbinder.service)" not-found "the unit is gone"
for path in /usr/bin/portbinder /usr/lib/portbinder /etc/portbinder /run/portbinder \
    /usr/lib/systemd/system/portbinder.service /usr/lib/systemd/system/portbinder@.socket \
    /usr/lib/sysusers.d/portbinder.conf /usr/share/man/man8/portbinder.8.gz \
    /usr/share/doc/portbinder /etc/systemd/system/multi-user.target.wants/portbinder.service; do
    check "removed: $path" test ! -e "$path"
done
check "nothing listens on port 80 any more" not get 127.0.0.1

phase "done"
echo "e2e: $((checks - failures)) of $checks checks passed"
[ "$failures" -eq 0 ]
