# Bash tab completion for the stress runner, fencecore-stress. The runner answers itself, through
# System.CommandLine's [suggest:<position>] directive (what dotnet-suggest would call): nothing to install
# or register. Enable it in a shell (or in ~/.bashrc):
#
#   source stress/completions/fencecore-stress.bash
#
# It completes the command `fencecore-stress`, which may be the built runner on PATH
# (stress/FenceCore.Stress/bin/Release/net10.0/fencecore-stress) or a shell function, for instance
#
#   fencecore-stress() { dotnet run --project ~/FenceCore/stress/FenceCore.Stress -c Release -- "$@"; }
#
# (a function, not an alias: the completion runs it to ask for completions). To ask another command, set
# FENCECORE_STRESS_COMMAND, e.g. FENCECORE_STRESS_COMMAND="dotnet /path/to/fencecore-stress.dll".

# Fills COMPREPLY for the word at COMP_CWORD of COMP_WORDS (bash sets both on tab).
_fencecore_stress() {
    local -a runner words
    local i word cur line
    if [[ -n ${FENCECORE_STRESS_COMMAND-} ]]; then
        read -r -a runner <<< "$FENCECORE_STRESS_COMMAND"
    else
        runner=("${COMP_WORDS[0]}")
    fi

    # The words after the command, up to the cursor's. Bash splits "--mode=vi" at '=' (COMP_WORDBREAKS);
    # the runner reads "--mode vi" alike, so the '=' words are dropped.
    words=()
    for ((i = 1; i <= COMP_CWORD; i++)); do
        [[ ${COMP_WORDS[i]} == "=" ]] || words+=("${COMP_WORDS[i]}")
    done
    cur=${COMP_WORDS[COMP_CWORD]}
    [[ $cur == "=" ]] && { cur=""; words+=(""); }
    line="${words[*]}"

    COMPREPLY=()
    while IFS= read -r word; do
        # Keep what the cursor's word starts with (the runner also offers words that only contain it).
        [[ -n $word && $word == "$cur"* ]] && COMPREPLY+=("$word")
    done < <("${runner[@]}" "[suggest:${#line}]" "$line" 2> /dev/null)
}

# -o default: with no suggestion (a PATH, an @file.rsp), bash completes file names.
complete -o default -F _fencecore_stress fencecore-stress
