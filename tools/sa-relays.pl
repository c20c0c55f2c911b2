#!/usr/bin/perl
# sa-relays.pl - SpamAssassin's own parse of the Received headers
# (Message::Metadata::Received), per message file named on stdin:
# "FILE<TAB>T=trusted<TAB>U=untrusted<TAB>unparseable=N", the format of
# EVAL_DUMP_RELAYS=1 build/tests/unit/eval_dump (tools/sa-eval-check
# --relays compares the two).  No rules are run.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Mail::SpamAssassin;

my $home = tempdir('sa-relays-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{HOME} = $home;
my $sa = Mail::SpamAssassin->new({
	rules_filename => '/usr/share/spamassassin',
	site_rules_filename => '/etc/spamassassin',
	userprefs_filename => "$home/none",
	userstate_dir => $home,
	dont_copy_prefs => 1,
	local_tests_only => 1,
	post_config_text => "use_bayes 0\n",
});
$sa->init(1);
$| = 1;
while (my $path = <STDIN>) {
	chomp $path;
	open(my $fh, '<', $path) or next;
	my @lines = <$fh>;
	close($fh);
	shift @lines if @lines && $lines[0] =~ /^From /;
	my $msg = $sa->parse(\@lines);
	my $pms = Mail::SpamAssassin::PerMsgStatus->new($sa, $msg);
	$pms->extract_message_metadata();
	printf "%s\tT=%s\tU=%s\tunparseable=%d\n", $path, $pms->{relays_trusted_str},
	    $pms->{relays_untrusted_str}, $pms->{num_relays_unparseable} || 0;
	$pms->finish();
	$msg->finish();
}
