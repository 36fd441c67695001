# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_memcheck_global_optspecs
    string join \n color= h/help V/version
end

function __fish_memcheck_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_memcheck_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_memcheck_using_subcommand
    set -l cmd (__fish_memcheck_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c memcheck -n "__fish_memcheck_needs_command" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_needs_command" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_needs_command" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "run" -d 'Run a program under the checker and report its heap errors and leaks'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l leak-check -d 'Leak check at exit: no, summary (totals only) or full (each leak with its stack)' -r -f -a "no\t''
summary\t''
full\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l show-leak-kinds -d 'Leak kinds to list one by one: a comma-separated list of definite, indirect, possible, reachable, or all / none' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l error-exitcode -d 'Exit with N when any error or any definite or indirect leak was found (Valgrind\'s meaning)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l on-error -d 'What happens after an error is reported: continue (as Valgrind) or abort (as ASan)' -r -f -a "continue\t''
abort\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l format -d 'Format of the report: text (on stderr) or json (to --output)' -r -f -a "text\t''
json\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s o -l output -d 'Where to write the --format report; - for standard output. The text report is always printed on stderr as well' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l num-callers -l depth -d 'Frames recorded per allocation (1-128)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l quarantine-size -d 'Bytes of freed memory held back from reuse, to catch double frees and late accesses (suffixes K, M, G)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l redzone-size -d 'Bytes of canary redzone before each block (16-4096, rounded up to 16)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l trace-children -d 'Also check the programs that PROG executes (yes or no)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l warnings-as-errors -d 'Count warnings (calloc-overflow, allocation-size-too-big, invalid-alignment) as errors'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run help" -f -a "run" -d 'Run a program under the checker and report its heap errors and leaks'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
