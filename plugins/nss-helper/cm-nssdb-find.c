/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-find.c: which NSS databases the mail clients use, and whether the client runs.
 * Evolution: sql:$HOME/.pki/nssdb. Thunderbird: profiles.ini's profiles (facts.md section 6),
 * of Debian's package and of the Snap and Flatpak packages. */
#include "cm-nssdb.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
cm_nssdb_client_name (CmNssdbClient client)
{
  switch (client)
    {
    case CM_NSSDB_CLIENT_EVOLUTION: return "Evolution";
    case CM_NSSDB_CLIENT_THUNDERBIRD: return "Thunderbird";
    case CM_NSSDB_CLIENT_OTHER:
    default: return "other";
    }
}

void
cm_nssdb_location_free (CmNssdbLocation *loc)
{
  if (loc == NULL)
    return;
  g_free (loc->dir);
  g_free (loc->profile);
  g_free (loc->state);
  g_free (loc);
}

static gboolean
pid_alive (int pid)
{
  return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

/* TRUE unless /proc/@pid/environ says the process runs with another HOME (another session's
 * client uses another database). */
static gboolean
same_home (const char *pid)
{
  g_autofree char *path = g_build_filename ("/proc", pid, "environ", NULL);
  g_autofree char *env = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &env, &len, NULL))
    return TRUE;
  for (gsize off = 0; off < len; off += strlen (env + off) + 1)
    if (g_str_has_prefix (env + off, "HOME="))
      return g_strcmp0 (env + off + 5, g_get_home_dir ()) == 0;
  return TRUE;
}

/* A process of this user (and this HOME) whose command name is @comm, or 0. */
static int
find_process (const char *comm)
{
  g_autoptr (GDir) d = g_dir_open ("/proc", 0, NULL);
  const char *name;
  uid_t me = getuid ();

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = NULL, *text = NULL;
      struct stat st;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_build_filename ("/proc", name, "comm", NULL);
      if (stat (path, &st) != 0 || st.st_uid != me
          || !g_file_get_contents (path, &text, NULL, NULL))
        continue;
      if (strcmp (g_strstrip (text), comm) == 0 && same_home (name))
        return atoi (name);
    }
  return 0;
}

static char *
evolution_dir (void)
{
  return g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
}

/* Where Thunderbird keeps profiles.ini: Debian's package, then the sandboxed packages (facts.md
 * section 6), which may not reach pcscd. */
typedef struct
{
  const char *rel; /* under $HOME */
  const char *sandbox;
  const char *note;
} ThunderbirdRoot;

static const ThunderbirdRoot thunderbird_roots[] = {
  { ".thunderbird", NULL, NULL },
  { "snap/thunderbird/common/.thunderbird", "Snap",
    "Thunderbird from the Snap package: its confinement may keep it from pcscd and from the card "
    "module in /usr/lib, so it may not see the card; connect its pcscd interface if it has one "
    "(snap connect thunderbird:pcscd), or use Debian's package (apt install thunderbird)" },
  { ".var/app/org.mozilla.Thunderbird/.thunderbird", "Flatpak",
    "Thunderbird from the Flatpak: its sandbox reaches pcscd only with the pcsc socket (flatpak "
    "override --user --socket=pcsc org.mozilla.Thunderbird) and loads only modules inside the "
    "sandbox, so it may not see the card; or use Debian's package (apt install thunderbird)" },
};

/* The PID holding the fcntl lock on @dir/.parentlock, or 0. Thunderbird takes it for as long as
 * it runs, and the kernel reports the holder in our PID namespace, also for a Flatpak whose
 * `lock` symlink names a PID of its own namespace. */
static int
parentlock_holder (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, ".parentlock", NULL);
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int pid = 0;

  if (fd < 0)
    return 0;
  if (fcntl (fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
    pid = fl.l_pid;
  close (fd);
  return pid;
}

/* Thunderbird's `lock` symlink says "ADDRESS:+PID"; the PID must still live (a stale lock can
 * survive a crash). The fcntl lock on .parentlock tells the same where the symlink cannot. */
static void
check_thunderbird (CmNssdbLocation *loc)
{
  g_autofree char *lock = g_build_filename (loc->dir, "lock", NULL);
  g_autofree char *target = g_file_read_link (lock, NULL);
  const char *plus = target ? strrchr (target, '+') : NULL;
  int pid = plus ? atoi (plus + 1) : 0;
  int holder = parentlock_holder (loc->dir);

  if (target && pid_alive (pid))
    {
      loc->pid = pid;
      loc->state = g_strdup_printf ("running (PID %d, lock %s)", pid, lock);
    }
  else if (holder > 0)
    {
      loc->pid = holder;
      loc->state = g_strdup_printf ("running (PID %d holds %s/.parentlock)", holder, loc->dir);
    }
  else if (target == NULL)
    loc->state = g_strdup ("not running");
  else
    loc->state = g_strdup_printf ("not running (stale lock %s -> %s)", lock, target);
}

static void
check_evolution (CmNssdbLocation *loc)
{
  int pid = find_process ("evolution");

  loc->pid = pid;
  loc->state
    = pid ? g_strdup_printf ("running (evolution, PID %d)", pid) : g_strdup ("not running");
}

static CmNssdbLocation *
location_new (CmNssdbClient client, const char *dir, const char *profile, gboolean is_default)
{
  CmNssdbLocation *loc = g_new0 (CmNssdbLocation, 1);
  g_autofree char *cert9 = NULL;

  loc->client = client;
  loc->dir = g_canonicalize_filename (dir, NULL);
  loc->profile = g_strdup (profile);
  loc->is_default = is_default;
  cert9 = g_build_filename (loc->dir, "cert9.db", NULL);
  loc->exists = g_file_test (cert9, G_FILE_TEST_EXISTS);
  return loc;
}

/* Whether @loc's client runs now: apart from location_new() because looking for an evolution
 * process reads every /proc/PID/comm, which `cacmail import-p12 --nssdb` should not pay for
 * each location it only compares paths with. Returns @loc. */
static CmNssdbLocation *
location_check (CmNssdbLocation *loc)
{
  if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
    check_thunderbird (loc);
  else if (loc->client == CM_NSSDB_CLIENT_EVOLUTION)
    check_evolution (loc);
  else
    loc->state = g_strdup ("no mail client uses it");
  return loc;
}

static char *
profile_path (const char *root, GKeyFile *kf, const char *group)
{
  g_autofree char *path = g_key_file_get_string (kf, group, "Path", NULL);
  gboolean rel = g_key_file_get_integer (kf, group, "IsRelative", NULL) == 1;

  if (path == NULL)
    return NULL;
  return rel ? g_build_filename (root, path, NULL) : g_steal_pointer (&path);
}

static CmNssdbLocation *
thunderbird_location (const char *dir, const char *name, gboolean def, const ThunderbirdRoot *tr)
{
  CmNssdbLocation *loc = location_new (CM_NSSDB_CLIENT_THUNDERBIRD, dir, name, def);

  loc->sandbox = tr->sandbox;
  loc->note = tr->note;
  return loc;
}

/* profiles.ini: the Install section's Default wins, else Default=1, else the only profile. */
static void
add_thunderbird (GPtrArray *out, const ThunderbirdRoot *tr)
{
  g_autofree char *root = g_build_filename (g_get_home_dir (), tr->rel, NULL);
  g_autofree char *ini = g_build_filename (root, "profiles.ini", NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_auto (GStrv) groups = NULL;
  g_autofree char *install_default = NULL, *flagged = NULL;
  guint nprofiles = 0, first = out->len;

  if (!g_key_file_load_from_file (kf, ini, G_KEY_FILE_NONE, NULL))
    return;
  groups = g_key_file_get_groups (kf, NULL);
  for (char **g = groups; *g; g++)
    if (g_str_has_prefix (*g, "Install") && install_default == NULL)
      {
        g_autofree char *d = g_key_file_get_string (kf, *g, "Default", NULL);
        if (d)
          install_default = g_path_is_absolute (d) ? g_canonicalize_filename (d, NULL)
                                                   : g_build_filename (root, d, NULL);
      }
  for (char **g = groups; *g; g++)
    if (g_str_has_prefix (*g, "Profile"))
      {
        g_autofree char *p = profile_path (root, kf, *g);
        nprofiles++;
        if (p && flagged == NULL && g_key_file_get_integer (kf, *g, "Default", NULL) == 1)
          flagged = g_canonicalize_filename (p, NULL);
      }
  for (char **g = groups; *g; g++)
    if (g_str_has_prefix (*g, "Profile"))
      {
        g_autofree char *p = profile_path (root, kf, *g);
        g_autofree char *name = g_key_file_get_string (kf, *g, "Name", NULL);
        g_autofree char *canon = p ? g_canonicalize_filename (p, NULL) : NULL;
        gboolean def;

        if (canon == NULL)
          continue;
        def = install_default ? g_strcmp0 (canon, install_default) == 0
                              : (flagged ? g_strcmp0 (canon, flagged) == 0 : nprofiles == 1);
        /* the default profile first: it is the one the client really uses */
        if (def)
          g_ptr_array_insert (out, first, thunderbird_location (canon, name, TRUE, tr));
        else
          g_ptr_array_add (out, thunderbird_location (canon, name, FALSE, tr));
      }
}

/* Every client's database, not yet checked for a running client. */
static GPtrArray *
locations (void)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_location_free);
  g_autofree char *evo = evolution_dir ();

  g_ptr_array_add (out, location_new (CM_NSSDB_CLIENT_EVOLUTION, evo, NULL, TRUE));
  for (gsize i = 0; i < G_N_ELEMENTS (thunderbird_roots); i++)
    add_thunderbird (out, &thunderbird_roots[i]);
  return out;
}

GPtrArray *
cm_nssdb_find_locations (void)
{
  GPtrArray *out = locations ();

  for (guint i = 0; i < out->len; i++)
    location_check (g_ptr_array_index (out, i));
  return out;
}

CmNssdbLocation *
cm_nssdb_locate (const char *dir)
{
  const char *path = g_str_has_prefix (dir, "sql:") ? dir + 4 : dir;
  g_autofree char *canon = g_canonicalize_filename (path, NULL);
  g_autoptr (GPtrArray) all = locations ();
  g_autofree char *lock = NULL, *prefs = NULL;

  for (guint i = 0; i < all->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (all, i);
      if (strcmp (loc->dir, canon) == 0)
        return location_check (g_ptr_array_steal_index (all, i));
    }
  /* A Thunderbird profile that profiles.ini does not list (thunderbird -profile DIR), possibly
   * under a sandboxed package's folder. */
  lock = g_build_filename (canon, "lock", NULL);
  prefs = g_build_filename (canon, "prefs.js", NULL);
  if (g_file_test (lock, G_FILE_TEST_IS_SYMLINK) || g_file_test (prefs, G_FILE_TEST_EXISTS))
    {
      const ThunderbirdRoot *tr = &thunderbird_roots[0];
      for (gsize i = 1; i < G_N_ELEMENTS (thunderbird_roots); i++)
        {
          g_autofree char *root
            = g_build_filename (g_get_home_dir (), thunderbird_roots[i].rel, NULL);
          if (g_str_has_prefix (canon, root) && canon[strlen (root)] == G_DIR_SEPARATOR)
            tr = &thunderbird_roots[i];
        }
      return location_check (thunderbird_location (canon, NULL, FALSE, tr));
    }
  return location_check (location_new (CM_NSSDB_CLIENT_OTHER, canon, NULL, FALSE));
}

gboolean
cm_nssdb_location_check (CmNssdbLocation *loc, CmNssdbChange change, GError **error)
{
  if (loc->pid <= 0 || change == CM_NSSDB_CHANGE_OBJECTS)
    return TRUE;
  g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
               "%s is running (PID %d) on %s and reads its module list only at start, and may "
               "rewrite it: close %s, then run this again",
               cm_nssdb_client_name (loc->client), loc->pid, loc->dir,
               cm_nssdb_client_name (loc->client));
  return FALSE;
}
