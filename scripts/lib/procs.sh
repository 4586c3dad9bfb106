# Process and port checks shared by scripts/services.sh and scripts/cluster.sh (sourced).

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when pid $1 is alive and its command line mentions $2 (so a recycled pid is not ours).
pid_matches() {
  local pid=$1 needle=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}
