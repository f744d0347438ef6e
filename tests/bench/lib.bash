# Helpers shared by the bench scripts (sourced). Set BENCH_NAME for messages
# and wait_idle (seconds, 0 = do not wait) before calling wait_for_idle.

# CPU pressure (Linux PSI) "some" total in microseconds: how long some runnable
# task waited for a CPU. Its growth over a run's wall time says how much other
# load the machine had. Empty if PSI is unavailable.
psi_some() { awk '/^some/ { sub(/^total=/, "", $5); print $5 }' /proc/pressure/cpu 2>/dev/null || true; }

# Wait up to $wait_idle seconds for the CPU pressure of the last 10 s to fall
# below 2 %.
wait_for_idle() {
    ((wait_idle > 0)) && [[ -r /proc/pressure/cpu ]] || return 0
    local waited=0 avg
    while :; do
        avg=$(awk '/^some/ { sub(/^avg10=/, "", $2); print $2 }' /proc/pressure/cpu)
        awk -v a="$avg" 'BEGIN { exit !(a < 2) }' && return 0
        if ((waited >= wait_idle)); then
            echo "${BENCH_NAME:-bench}: machine still busy (cpu pressure avg10 $avg %) after ${wait_idle}s; running anyway" >&2
            return 0
        fi
        sleep 2
        waited=$((waited + 2))
    done
}
