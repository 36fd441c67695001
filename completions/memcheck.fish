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
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "maps" -d 'Show every memory region of a live process: its kind (text, heap, thread stack, malloc arena, ...), the ELF sections it holds, and its size, RSS, PSS, dirty and swap'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "residency" -d 'Show which pages of files (or of a live process) are in memory, and load, evict or lock them'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "overcommit" -d 'Explain the kernel\'s overcommit policy and commit accounting, and probe whether an allocation would succeed'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "stats" -d 'Show the heap figures of a live process: memcheck\'s own counters (read without stopping it) when it runs under memcheck, glibc\'s mallinfo2 and malloc_stats (through a brief ptrace call) for any process, and its footprint from /proc'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "leaks" -d 'Check a process running under `memcheck run` for leaks now, while it goes on: its threads pause only for the reachability scan (no ptrace, no restart), and the report comes in every format of the exit report; --since-last shows only what is new or grown since the previous check'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "clean" -d 'Remove the run directories (TMPDIR/memcheck-PID-START-NS-*) that runs of memcheck killed before they could clean up left behind; every run also does this quietly first'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "report" -d 'Render a saved JSON report (memcheck run --format json) again, in any format, without running the program; or, with --diff, list the findings that are new or fixed between two'
complete -c memcheck -n "__fish_memcheck_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l leak-check -d 'Leak check at exit: no, summary (totals only) or full (each leak with its stack). With --sample-rate, no is production mode (see --sample-rate)' -r -f -a "no\t''
summary\t''
full\t'Valgrind\'s `--leak-check=yes` means the same'"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l show-leak-kinds -d 'Leak kinds to list one by one: a comma-separated list of definite, indirect, possible, reachable, or all / none' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l error-exitcode -d 'Exit with N when any error or any leak of a kind --errors-for-leak-kinds names was found (Valgrind\'s meaning); suppressed findings and those of --baseline do not count' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l errors-for-leak-kinds -d 'Leak kinds that count as errors, for --error-exitcode and the ERROR SUMMARY: a comma-separated list of definite, indirect, possible, reachable, or all / none. The default differs from Valgrind\'s (definite,possible): an indirect block is lost for sure, while a possible one is often a live block reached through an interior pointer' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l show-mismatched-frees -d 'Report alloc-dealloc-mismatch (a block released by a function of another family, e.g. malloc\'d and deleted): yes or no; with no they are neither reported nor counted' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l suppressions -d 'Suppress the findings FILE describes (repeatable): LeakSanitizer lines (leak:PATTERN, or KIND:PATTERN for an error kind such as heap-buffer-overflow) and Valgrind blocks ({ name, Memcheck:Leak, fun:..., obj:..., ... }), mixed as you like. Read before the program runs: a malformed file is refused with FILE:LINE' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l default-suppressions -d 'Apply memcheck\'s built-in suppressions (yes or no): one-time allocations that libstdc++, the Rust runtime, GCC and binutils keep until exit on purpose, and rust-lld\'s deliberate frees of malloc\'d buffers with operator delete' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l gen-suppressions -d 'Print a ready suppression under each reported finding: no, yes or all (both print every one; memcheck does not ask as Valgrind\'s yes does). Its frames are function names up to main, so it survives a rebuild' -r -f -a "no\t''
yes\t''
all\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l gen-suppressions-format -d 'Format of --gen-suppressions\' entries: valgrind (a { ... } block of the stack\'s functions) or lsan (KIND:^FUNCTION$ of the program\'s innermost frame)' -r -f -a "valgrind\t''
lsan\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l baseline -d 'Findings FILE (written by --write-baseline) lists are known: still shown, marked known, but they do not fail --error-exitcode; the end of the report names the new ones and the entries no finding had (disappeared). Matched by fingerprint (kind and function names), so rebuilds and moved lines keep matching. Read before the program runs' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l write-baseline -d 'Write every finding of this run to FILE as a baseline (JSON, one entry per fingerprint with its kind, functions and count, sorted). Checked before the program runs; may be the --baseline file, to update it' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l on-error -d 'What happens after an error is reported: continue (as Valgrind) or abort (as ASan)' -r -f -a "continue\t''
abort\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l format -d 'Format of the report: text (on stderr, or to --output), json, sarif (SARIF 2.1.0, for code scanning) or junit (JUnit XML, one test case per process); json, sarif and junit need --output' -r -f -a "text\t''
json\t''
sarif\t''
junit\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s o -l output -d 'Where to write the --format report; - for standard output. Checked before the program runs. A regular file is replaced atomically; a device, FIFO or symlink is written into. With json, sarif or junit the text report is still printed on stderr; with text it goes to FILE only, without colour' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l report -d 'Also write the report in FORMAT (text, json, sarif or junit) to FILE; repeatable, in addition to --format/--output (e.g. --report sarif=r.sarif --report junit=r.xml). Each FILE is checked before the program runs and written like --output\'s; text to a file has no colour, and the text report still goes to stderr' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l source-root -d 'SARIF\'s %SRCROOT%: source files under DIR are given relative to it, and a finding is located at its innermost frame in a file under DIR [default: the working directory]' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l xml -d 'Also write Valgrind\'s XML (protocol 4, one document per process) for the tools that read Valgrind\'s (ValgrindCI, valgrind-codequality, Jenkins\' plugin): yes or no; needs --xml-file' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l xml-file -d 'Where --xml=yes writes: %p is the pid of the process the document is for (one file per process), %q{VAR} the value of the environment variable VAR, %% a %. Checked before the program runs. Without %p, a run of several processes writes the first one\'s document to FILE and each other\'s to FILE.PID' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l log-file -d 'Write the text report to FILE instead of stderr, without colour (Valgrind\'s option; %p, %q{VAR} and %% as in --xml-file). With %p, one file per process; without, one file with every process, each under its own ==PID== header. Checked before the program runs; - is refused (it would mix with the program\'s standard output)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l flamegraph -d 'Also draw the leaks listed at exit (--show-leak-kinds) as an interactive flame graph (SVG) of leaked bytes by allocation stack, written to FILE (checked before the program runs)' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l snapshot-signal -d 'Take a snapshot of the running program\'s live allocation sites (bytes, blocks and allocation calls per stack, as `memcheck stats --sites`) each time memcheck itself gets signal SIG (`kill -USR1 MEMCHECK_PID`; a name as USR1 or SIGUSR2, RTMIN+N, or a number). The signal is memcheck\'s, not passed on to the program. A snapshot goes where the text report goes (stderr, or --log-file), into the JSON report\'s `snapshots`, and with --flamegraph FILE.svg to FILE.snapshot-N.svg. Signals that end, stop or crash processes, SIGCHLD, SIGPIPE and memcheck\'s own 62 are refused' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l snapshot-interval -d 'Take a snapshot (as --snapshot-signal) every SECS seconds while the program runs' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l num-callers -l depth -d 'Frames recorded per allocation (1-128)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l keep-stacktraces -d 'Which stacks a heap block keeps, as Valgrind\'s option (values below). A stack not kept is an empty stack in every report; an error\'s own stack (where it was found) is always walked' -r -f -a "alloc\t'The allocation stack only: no stack walked at free, a cheaper free; errors on a freed block say nothing of where it was freed'
free\t'The free stack only: errors and leaks carry no allocation stack (leaks still found and classified, grouped by kind alone; `stats --sites` shows one site without a stack)'
alloc-and-free\t'Both (the default)'
alloc-then-free\t'The allocation stack until the free, then the free stack instead of it: errors on a freed block show only where it was freed'
none\t'No stacks: the cheapest'"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l quarantine-size -d 'Bytes of freed memory held back from reuse, to catch double frees and late accesses (suffixes K, M, G, T)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l redzone-size -d 'Bytes of canary redzone before each block (16-4096, rounded up to 16)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l guard -d 'Guard mode: every block on pages of its own between PROT_NONE pages, its end flush with the page after it (overflow, the default) or its start right after the page before it (underflow), or each allocation site alternating the two (both); freed blocks become inaccessible (until their slot is reused after the quarantine), so bad reads and writes fault at the instruction. A block is aligned to the largest power of two dividing its size, at most 16, so even a 1-byte overflow faults (see --guard-align)' -r -f -a "overflow\t''
underflow\t''
both\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l guard-align -d 'Guard mode (implies --guard): align every guarded block to N bytes (a power of two up to 4096) instead of its size\'s own alignment, for programs that assume more of malloc than the C standard gives (16: glibc\'s alignment, for SSE code that uses aligned loads on small blocks); an overflow within the padding is then found at free, by its canary' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l max-allocation-size -d 'Report requests larger than SIZE bytes as allocation-size-too-big (ASan\'s limit by default; suffixes K, M, G, T); the call still returns what glibc returns' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l sample-rate -d 'Guard 1 block in N (GWP-ASan style sampling) and serve the rest in the default mode; implies --guard. With --leak-check=no and N above 1 (and neither --malloc-fill nor --free-fill), production mode: the other blocks are glibc\'s own, with nothing recorded (no stack, redzone, fill or quarantine), so they cost what they cost natively, and their double or invalid frees are left to glibc' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l malloc-fill -d 'Byte written into new blocks (not calloc\'s), 0-255 or none [default: 0xbe, or as MALLOC_PERTURB_ says]' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l free-fill -d 'Byte written into freed blocks and checked when they leave the quarantine, catching writes after free; 0-255 or none [default: 0xfd, or as MALLOC_PERTURB_ says]' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l check-mem-functions -d 'Check the ranges the memory and string functions (memcpy, memset, strlen, strcpy, strcat, puts, ... and their _FORTIFY_SOURCE _chk variants) read and write against the heap block they fall in, and overlapping source and destination (param-overlap), before glibc does the work (yes or no). Calls the compiler inlines are not seen. [default: yes, except in production mode (--leak-check=no --sample-rate=N): no there unless given, as GWP-ASan, which gives up param-overlap and the sampled blocks\' range checks]' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l trace-children -d 'Also check the programs that PROG executes (yes or no)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l trace-children-skip -d 'With --trace-children: programs exec\'d at a path matching one of these comma-separated glob patterns (* and ? match any characters, / included) run without memcheck (Valgrind\'s --trace-children-skip)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l trace-children-skip-by-arg -d 'With --trace-children: programs exec\'d with an argument (argv[0] included) matching one of these comma-separated glob patterns run without memcheck (Valgrind\'s --trace-children-skip-by-arg)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l child-silent-after-fork -d 'Forked children write no report until they exec another program (yes or no; Valgrind\'s option)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s q -l quiet -d 'Quiet (Valgrind\'s -q): the text report on stderr holds only findings: errors, leak records, warnings that a report is incomplete, the ERROR SUMMARY of a process with errors and the failing processes; no first line per process, LEAK SUMMARY, clean ERROR SUMMARY, suppressions table or progress bar. The file reports (--output, --report) are complete'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l list-unused-suppressions -d 'At the end, also list the suppressions of --suppressions files that matched nothing'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -l warnings-as-errors -d 'Count warnings (calloc-overflow, allocation-size-too-big, invalid-alignment) as errors'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memcheck -n "__fish_memcheck_using_subcommand run" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -l sort -d 'Order of the regions: by start address, by size, RSS, PSS or swap (largest first), or by kind' -r -f -a "start\t''
size\t''
rss\t''
pss\t''
swap\t''
kind\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -l kind -d 'Show only regions of this kind (repeatable, or comma-separated). Totals then cover the shown regions' -r -f -a "text\t'Executable code of an ELF object (`r-x`)'
rodata\t'Read-only data of an ELF object: headers, .rodata, .eh_frame, and RELRO after relocation'
data\t'Writable data of an ELF object (.data, .got.plt, the start of .bss)'
bss\t'The anonymous tail of an object\'s writable segment: the rest of its .bss'
heap\t'The brk area (`[heap]`), where glibc\'s main arena lives'
stack\t'The main thread\'s stack (`[stack]`)'
thread-stack\t'Another thread\'s stack, found through its stack pointer'
malloc-arena\t'A glibc malloc arena of a non-main thread (64 MiB aligned, PROT_NONE tail)'
anon\t'Other anonymous memory (mmap\'d blocks, JIT areas, ...)'
file\t'A mapped file that is not an ELF object, or that could not be read'
shm\t'Shared memory: SysV segments, /dev/shm, memfd and shared anonymous mappings'
vdso\t'The vDSO, code the kernel maps into every process'
vvar\t'The vDSO\'s data pages'
vsyscall\t'The legacy fixed-address system-call page'
guard\t'An inaccessible (PROT_NONE) region: a guard page or a gap between segments'
memcheck\t'memcheck\'s own memory inside a checked program (`[anon:memcheck]`)'"
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -l format -d 'Format of the output: text or json' -r -f -a "text\t''
json\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -s o -l output -d 'Write the output to FILE instead of standard output' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memcheck -n "__fish_memcheck_using_subcommand maps" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l pid -d 'Show the residency of each region of this live process instead (from /proc/PID/pagemap): resident, swapped out, not present' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l format -d 'Format of the output: text or json' -r -f -a "text\t''
json\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -s o -l output -d 'Write the output to FILE instead of standard output' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l touch -d 'Read the files\' pages into the page cache first'
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l evict -d 'Drop the files\' pages from the page cache first (dirty pages are written back first)'
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -l lock -d 'Load the files\' pages and hold them in memory with mlock until interrupted (SIGINT or SIGTERM)'
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand residency" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l check -d 'Probe whether an allocation of SIZE bytes would succeed now (suffixes K, M, G, T), with a real mmap in a throw-away child that never touches it' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l pid -d 'Also show this process\'s commit, OOM score and memory limits' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l top -d 'How many processes --oom lists' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l format -d 'Format of the output: text or json' -r -f -a "text\t''
json\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -s o -l output -d 'Write the output to FILE instead of standard output' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -l oom -d 'Also list the processes the OOM killer would pick first'
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand overcommit" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l format -d 'Output format' -r -f -a "text\t''
json\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l watch -d 'Refresh every SECONDS: a live view on a terminal, one line per refresh when piped (one JSON object per line with --format json); ends when the process exits' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l sort -d 'With --sites: order by live bytes, live blocks, or allocation calls made at the site since the process started, freed blocks included (largest first; `allocs` also lists the sites whose blocks are all freed)' -r -f -a "bytes\t''
blocks\t''
allocs\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l flamegraph -d 'With --sites: also draw every site as an interactive flame graph (SVG) of live bytes by allocation stack, written to FILE (again at each --watch refresh)' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l top -d 'With --sites: how many sites to show' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l ptrace -d 'Also stop a process that runs under memcheck briefly to ask glibc for mallinfo2'
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l no-ptrace -d 'Never stop the process: no glibc figures for processes outside memcheck'
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -l sites -d 'Instead, the top allocation sites of a process under memcheck: live bytes and blocks per allocation stack, symbolized (its block table is read under its locks: allocations wait that long, nothing is paused). With --watch, each site\'s growth per interval'
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand stats" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l show-leak-kinds -d 'Leak kinds to list one by one: a comma-separated list of definite, indirect, possible, reachable, or all / none' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l format -d 'Format of the report: text, json, sarif, junit (as memcheck run\'s) or xml (Valgrind\'s XML, protocol 4: one document for the process checked, laid out as Valgrind\'s at exit)' -r -f -a "text\t''
json\t''
sarif\t''
junit\t''
xml\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -s o -l output -d 'Write the --format report to FILE instead of standard output (a regular file is replaced atomically; a device, FIFO or symlink written into)' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l report -d 'Also write the report in FORMAT (text, json, sarif, junit or xml) to FILE; repeatable' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l suppressions -d 'Suppress the findings FILE describes (repeatable; the formats of memcheck run\'s --suppressions)' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l default-suppressions -d 'Apply memcheck\'s built-in suppressions (yes or no)' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l source-root -d 'SARIF\'s %SRCROOT% [default: the working directory]' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l timeout -d 'Seconds to wait for the process\'s answer' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l flamegraph -d 'Also draw the listed leaks as an interactive flame graph (SVG) of leaked bytes by allocation stack, written to FILE' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -l since-last -d 'Show only the leaks that are new or grew since the previous check of this process (by fingerprint: kind and stack functions), with the blocks and bytes added since (Valgrind\'s `leak_check full increased`). Every check is remembered for the next'
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand leaks" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand clean" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand clean" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand clean" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l diff -d 'Compare two JSON reports: list the findings of NEW that OLD does not have (new) and those of OLD that NEW does not have (fixed), matched by fingerprint' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l format -d 'Output format: text, json, sarif, junit or xml (Valgrind\'s XML of one process, see --pid; with --diff: text or json)' -r -f -a "text\t''
json\t''
sarif\t''
junit\t''
xml\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -s o -l output -d 'Write the output to FILE instead of standard output (checked first; a regular file is replaced atomically, a device, FIFO or symlink written into)' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l source-root -d 'SARIF\'s %SRCROOT% (and the root --diff shows files relative to) [default: the working directory]' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l pid -d 'With --format xml: the process whose document to write (Valgrind\'s XML is one document per process); needed when the report has several' -r
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l baseline -d 'Mark the findings FILE (written by memcheck run --write-baseline) lists as known, and list the new ones and the entries no finding had; exit 1 when an error or a listed leak is new' -r -F
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -l color -d 'When to use colour: auto (only on a terminal, never with NO_COLOR), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -s h -l help -d 'Print help'
complete -c memcheck -n "__fish_memcheck_using_subcommand report" -s V -l version -d 'Print version'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "run" -d 'Run a program under the checker and report its heap errors and leaks'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "maps" -d 'Show every memory region of a live process: its kind (text, heap, thread stack, malloc arena, ...), the ELF sections it holds, and its size, RSS, PSS, dirty and swap'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "residency" -d 'Show which pages of files (or of a live process) are in memory, and load, evict or lock them'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "overcommit" -d 'Explain the kernel\'s overcommit policy and commit accounting, and probe whether an allocation would succeed'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "stats" -d 'Show the heap figures of a live process: memcheck\'s own counters (read without stopping it) when it runs under memcheck, glibc\'s mallinfo2 and malloc_stats (through a brief ptrace call) for any process, and its footprint from /proc'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "leaks" -d 'Check a process running under `memcheck run` for leaks now, while it goes on: its threads pause only for the reachability scan (no ptrace, no restart), and the report comes in every format of the exit report; --since-last shows only what is new or grown since the previous check'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "clean" -d 'Remove the run directories (TMPDIR/memcheck-PID-START-NS-*) that runs of memcheck killed before they could clean up left behind; every run also does this quietly first'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "report" -d 'Render a saved JSON report (memcheck run --format json) again, in any format, without running the program; or, with --diff, list the findings that are new or fixed between two'
complete -c memcheck -n "__fish_memcheck_using_subcommand help; and not __fish_seen_subcommand_from run maps residency overcommit stats leaks clean report help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
