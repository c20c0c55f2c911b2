#!/usr/bin/perl
# sa-parity-sa.pl - Debian's SpamAssassin (Mail::SpamAssassin, the library
# spamassassin -t and spamd run) over message files, for tools/sa-parity and
# tools/bench scan.  One process loads the rules once and checks many
# messages, as a spamd child does.
#
#   sa-parity-sa.pl --list
#       every rule SpamAssassin defines: NAME TAB SCORE TAB TYPE (score set
#       0: no network tests, no Bayes), TYPE one of header body rawbody full
#       uri meta eval (eval: an eval: test of any scope)
#   sa-parity-sa.pl [--cf FILE] < FILES
#       FILES one path a line; prints one JSON line per message:
#       {"file", "score", "rules": [hit scored rules], "us": CPU microseconds}
#       --subtests: the __ rules that matched too (tools/sa-eval-check)
#       FILE (e.g. build/sa-parity/local.cf) is read after every other
#       configuration file: it zeroes the rules moat does not import.
#
# Network tests, Bayes, auto-learning and the auto-whitelist are off; user
# state lives in a temporary directory removed at exit (no ~/.spamassassin).
use strict;
use warnings;
use File::Temp qw(tempdir);
use JSON::PP;
use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID);
use Mail::SpamAssassin;

my ($list, $cf, $sub) = (0, undef, 0);
while (@ARGV) {
	my $a = shift @ARGV;
	if ($a eq '--list') { $list = 1 }
	elsif ($a eq '--subtests') { $sub = 1 }
	elsif ($a eq '--cf') { $cf = shift @ARGV // die "sa-parity-sa: --cf needs a file\n" }
	else { die "usage: sa-parity-sa.pl --list | [--subtests] [--cf FILE] < FILES\n" }
}
my $home = tempdir('sa-parity-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$SIG{TERM} = $SIG{INT} = sub { exit 143 };  # exit runs the cleanup
$ENV{HOME} = $home;
open(my $up, '>', "$home/user_prefs") or die "sa-parity-sa: $home/user_prefs: $!\n";
close($up);
my $text = "use_bayes 0\nbayes_auto_learn 0\nuse_auto_whitelist 0\n";
if (defined $cf) {
	open(my $fh, '<', $cf) or die "sa-parity-sa: $cf: $!\n";
	local $/;
	$text .= <$fh>;
}
my $sa = Mail::SpamAssassin->new({
	rules_filename => '/usr/share/spamassassin',
	site_rules_filename => '/etc/spamassassin',
	userprefs_filename => "$home/user_prefs",
	userstate_dir => $home,
	home_dir_for_helpers => $home,
	dont_copy_prefs => 1,
	local_tests_only => 1,
	post_config_text => $text,
});
$sa->init(1);

if ($list) {
	my $c = $sa->{conf};
	no strict 'vars';
	my %type = (
		$Mail::SpamAssassin::Conf::TYPE_HEAD_TESTS => 'header',
		$Mail::SpamAssassin::Conf::TYPE_BODY_TESTS => 'body',
		$Mail::SpamAssassin::Conf::TYPE_RAWBODY_TESTS => 'rawbody',
		$Mail::SpamAssassin::Conf::TYPE_FULL_TESTS => 'full',
		$Mail::SpamAssassin::Conf::TYPE_URI_TESTS => 'uri',
		$Mail::SpamAssassin::Conf::TYPE_META_TESTS => 'meta',
	);
	for my $name (sort keys %{$c->{scores}}) {
		my $t = $c->{test_types}{$name};
		my $kind = defined $t ? ($type{$t} // 'eval') : 'other';
		printf "%s\t%s\t%s\n", $name, $c->{scores}{$name}, $kind;
	}
	exit 0;
}

my $json = JSON::PP->new->canonical;
$| = 1;
while (my $path = <STDIN>) {
	chomp $path;
	next unless length $path;
	open(my $fh, '<:raw', $path) or die "sa-parity-sa: $path: $!\n";
	my $msg = do { local $/; <$fh> };
	close($fh);
	my $t0 = clock_gettime(CLOCK_PROCESS_CPUTIME_ID);
	my $mail = $sa->parse($msg);
	my $st = $sa->check($mail);
	my @hits = split /,/, ($st->get_names_of_tests_hit() // '');
	push @hits, split /,/, ($st->get_names_of_subtests_hit() // '') if $sub;
	my $score = $st->get_score() + 0;
	$st->finish();
	$mail->finish();
	my $us = (clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $t0) * 1e6;
	print $json->encode({ file => $path, score => $score, rules => \@hits,
			      us => sprintf('%.1f', $us) + 0 }), "\n";
}
