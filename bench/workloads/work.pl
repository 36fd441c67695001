# Perl workload: hashes and regular expressions over generated log lines.
#
#   perl work.pl N
#
# Builds N log lines from a fixed-seed generator, parses them with regexes into nested hashes,
# aggregates, sorts and prints a checksum, so every run does the same work.
use strict;
use warnings;

my $n = shift // 200000;
my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

my @verbs = qw(GET POST PUT DELETE HEAD);
my @paths = map { "/api/v" . ($_ % 3) . "/item/" . $_ } 0 .. 499;
my @lines;
for my $i (1 .. $n) {
    my $r = rnd();
    push @lines, sprintf("%05d host%d.example %s %s?q=%d HTTP/1.1 %d %d",
        $i, $r % 61, $verbs[$r % 5], $paths[($r >> 3) % 500], $r % 1000,
        (200, 200, 200, 301, 404, 500)[($r >> 7) % 6], ($r >> 5) % 65536);
}

my (%by_host, %by_path, %status);
for my $l (@lines) {
    next unless $l =~ /^(\d+) (host\d+)\.example (\w+) (\/api\/v(\d)\/item\/(\d+))\?q=(\d+) HTTP\/1\.1 (\d{3}) (\d+)$/;
    my ($host, $verb, $path, $ver, $item, $q, $st, $bytes) = ($2, $3, $4, $5, $6, $7, $8, $9);
    $by_host{$host}{$verb}++;
    $by_path{$path}{bytes} += $bytes;
    push @{ $by_path{$path}{queries} }, $q if $q % 10 == 0;
    $status{$st}++;
}

my $sum = 0;
for my $p (sort { $by_path{$b}{bytes} <=> $by_path{$a}{bytes} || $a cmp $b } keys %by_path) {
    my $qs = join ",", sort { $a <=> $b } @{ $by_path{$p}{queries} || [] };
    $sum += length($qs) + $by_path{$p}{bytes};
}
for my $h (keys %by_host) {
    $sum += $_ for values %{ $by_host{$h} };
}
my $text = join " ", map { "$_:$status{$_}" } sort keys %status;
(my $t2 = $text) =~ s/(\d+):(\d+)/$2:$1/g;
$sum += length $t2;
print "perl n=$n hosts=", scalar(keys %by_host), " paths=", scalar(keys %by_path), " checksum=$sum\n";
