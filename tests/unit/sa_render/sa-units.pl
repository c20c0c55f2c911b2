#!/usr/bin/perl
# sa-units.pl - what SpamAssassin's body, rawbody and uri rules read in each
# message: the oracle for tests/unit/render_dump (test_render_sa.sh).
#   perl sa-units.pl FILE...   (a leading mbox "From " line is skipped)
# Prints per file "== name", then "B\t", "R\t", "U\t" lines (URIs sorted,
# unique), bytes escaped as render_dump escapes them.
use strict;
use warnings;
use Mail::SpamAssassin;

my $sa = Mail::SpamAssassin->new({ local_tests_only => 1, dont_copy_prefs => 1,
	userprefs_filename => '/dev/null', post_config_text => "use_bayes 0\n" });
$sa->init(1);

sub esc {
	my $s = shift;
	utf8::encode($s) if utf8::is_utf8($s);
	$s =~ s/([\\\x00-\x1f\x7f-\xff])/$1 eq "\\" ? "\\\\" : $1 eq "\n" ? "\\n" : sprintf("\\x%02x", ord($1))/ge;
	return $s;
}

for my $f (@ARGV) {
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	$text =~ s/\AFrom [^\n]*\n//;
	my $msg = $sa->parse($text, 1);
	my $pms = Mail::SpamAssassin::PerMsgStatus->new($sa, $msg);
	(my $name = $f) =~ s{.*/}{};
	print "== $name\n";
	print "B\t", esc($_), "\n" for @{ $msg->get_rendered_body_text_array() };
	print "R\t", esc($_), "\n" for @{ $msg->get_decoded_body_text_array() };
	my %u = map { esc($_) => 1 } $pms->get_uri_list();
	print "U\t$_\n" for sort keys %u;
	$pms->finish();
	$msg->finish();
}
