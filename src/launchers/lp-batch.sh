#  lp-batch.sh - what the batch-system launchers (lp-launch-slurm,
#  lp-launch-pbs, lp-launch-sge) share. Sourced, not run.
#
#  A batch launcher turns a template into a job script and submits it:
#
#    template   <profile>/KIND.template when the profile has one, else
#               the project's profiles/default/KIND.template (source tree:
#               ../../profiles/default from this folder; installed:
#               ../../share/luaparallel/profiles/default)
#    render     @NAME@ becomes the value of NAME as written; @NAME_Q@ the
#               value quoted for the shell (printf %q), for command lines
#    script     LP_STATE_DIR/KIND.sh (mode 0700): kept, so that what was
#               submitted can be read back
#    record     LP_STATE_DIR/KIND.jobid: the job id `stop` cancels
#
#  The names a template can use (lp_batch_render): JOB_NAME, N, LAST (N-1),
#  FIRST_ID, ENGINE, ENGINE_FILE, ENGINE_ARGS (as given, several words),
#  LOG_DIR, STATE_DIR, TIME_SEC (walltime in seconds from the time option,
#  empty without one) and DIRECTIVES (the KIND's #SBATCH / #PBS / #$ lines
#  from the options, one a line).
#
#  Every engine is started as
#      ENGINE --file ENGINE_FILE --id ID --log LOG_DIR/engine-ID.log ENGINE_ARGS
#  so the connection file and the log folder must be on a file system the
#  compute nodes share with the controller's host (as batch clusters have).

#  bash 5.2 reads & in a ${x//pattern/replacement} as the match: values
#  are written as they are
shopt -u patsub_replacement 2>/dev/null
LP_BATCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

lp_batch_die() {
    echo "lp-launch-$LP_BATCH_KIND: $*" >&2
    exit 1
}

#  lp_batch_env: the environment the controller gives (contract of
#  lp_launcher); dies naming what is missing
lp_batch_env() {
    local v
    for v in LP_N LP_ENGINE LP_ENGINE_FILE LP_PROFILE_DIR LP_STATE_DIR LP_LOG_DIR; do
        [ -n "${!v:-}" ] || lp_batch_die "$v is not set (run by lpcontroller --engines $LP_BATCH_KIND)"
    done
    case $LP_N in
        ''|*[!0-9]*|0) lp_batch_die "LP_N must be a positive engine count, not '$LP_N'" ;;
    esac
    LP_FIRST_ID=${LP_FIRST_ID:-0}
    case $LP_FIRST_ID in
        ''|*[!0-9]*) lp_batch_die "LP_FIRST_ID must be a number, not '$LP_FIRST_ID'" ;;
    esac
    LP_ENGINE_ARGS=${LP_ENGINE_ARGS:-}
}

#  lp_batch_template: the path of the KIND's template
lp_batch_template() {
    local f d
    f=$LP_PROFILE_DIR/$LP_BATCH_KIND.template
    if [ -f "$f" ]; then echo "$f"; return; fi
    for d in "$LP_BATCH_HERE/../../profiles/default" \
             "$LP_BATCH_HERE/../../share/luaparallel/profiles/default"; do
        f=$d/$LP_BATCH_KIND.template
        if [ -f "$f" ]; then echo "$f"; return; fi
    done
    lp_batch_die "no template $LP_BATCH_KIND.template in $LP_PROFILE_DIR nor in the installed profiles/default"
}

#  lp_batch_seconds TIME [UNIT]: seconds of a walltime written
#  D-HH:MM:SS, D-HH[:MM], HH:MM:SS, MM:SS or a bare number of UNIT seconds
#  (60, Slurm's minutes, by default; PBS and SGE count seconds: 1); empty
#  when TIME is empty or not understood
lp_batch_seconds() {
    local t=$1 unit=${2:-60} d=0 h=0 m=0 s=0 a b c
    [ -n "$t" ] || return 0
    if [[ $t == *-* ]]; then
        d=${t%%-*}; t=${t#*-}
        [[ $d =~ ^[0-9]+$ ]] || return 0
        IFS=: read -r a b c <<< "$t"
        h=$a; m=${b:-0}; s=${c:-0}
    else
        IFS=: read -r a b c <<< "$t"
        if [ -n "$c" ]; then h=$a; m=$b; s=$c
        elif [ -n "$b" ]; then m=$a; s=$b
        elif [ "$unit" = 60 ]; then m=$a
        else s=$a
        fi
    fi
    [[ "$h$m$s" =~ ^[0-9]+$ ]] || return 0
    echo $(( ((10#$d * 24 + 10#$h) * 60 + 10#$m) * 60 + 10#$s ))
}

#  lp_batch_extra TEXT PREFIX: the extra directive lines of an option (one
#  a line, or separated by ';'), each given PREFIX unless it has it
lp_batch_extra() {
    local line
    [ -n "$1" ] || return 0
    while IFS= read -r line; do
        line=${line#"${line%%[![:space:]]*}"}
        [ -n "$line" ] || continue
        case $line in
            "$2"*) echo "$line" ;;
            *)     echo "$2 $line" ;;
        esac
    done <<< "${1//;/$'\n'}"
}

#  lp_batch_render TEMPLATE DIRECTIVES TIME_SEC: the job script on stdout
lp_batch_render() {
    local text name value
    text=$(cat "$1") || lp_batch_die "cannot read $1"
    local -A vals=(
        [JOB_NAME]="lp-$(basename "$LP_PROFILE_DIR" | sed 's/^profile_//')"
        [N]=$LP_N
        [LAST]=$((LP_N - 1))
        [FIRST_ID]=$LP_FIRST_ID
        [ENGINE]=$LP_ENGINE
        [ENGINE_FILE]=$LP_ENGINE_FILE
        [ENGINE_ARGS]=$LP_ENGINE_ARGS
        [LOG_DIR]=$LP_LOG_DIR
        [STATE_DIR]=$LP_STATE_DIR
        [TIME_SEC]=$3
        [DIRECTIVES]=$2
    )
    for name in "${!vals[@]}"; do
        value=${vals[$name]}
        text=${text//@${name}_Q@/$(printf '%q' "$value")}
        text=${text//@${name}@/$value}
    done
    printf '%s\n' "$text"
}

#  lp_batch_write DIRECTIVES TIME_SEC: renders the template into
#  LP_STATE_DIR/KIND.sh and prints its path
lp_batch_write() {
    local tmpl out
    tmpl=$(lp_batch_template)
    out=$LP_STATE_DIR/$LP_BATCH_KIND.sh
    mkdir -p "$LP_STATE_DIR" "$LP_LOG_DIR" || lp_batch_die "cannot make $LP_STATE_DIR or $LP_LOG_DIR"
    lp_batch_render "$tmpl" "$1" "$2" > "$out.tmp" && chmod 0700 "$out.tmp" && mv -f "$out.tmp" "$out" \
        || lp_batch_die "cannot write $out"
    echo "$out"
}

#  lp_batch_need COMMAND...: each is installed, or the launcher dies
#  saying which (the batch system's client tools)
lp_batch_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 \
            || lp_batch_die "'$c' not found in PATH: the $LP_BATCH_KIND client tools are not installed on this host"
    done
}

#  lp_batch_wait SECONDS COMMAND...: polls COMMAND (true = done) until
#  the deadline; 1 when it passed
lp_batch_wait() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5       # poll interval of the batch system's queue
    done
}
