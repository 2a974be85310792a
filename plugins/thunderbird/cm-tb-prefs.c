/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-prefs.c: prefs.js read and written as Thunderbird's libpref does, without losing a byte
 * of what we do not change. The parser records where each statement and its value sit in the
 * text; a change splices the text and parses it again, so the text is always the truth. */
#include "cm-tb-private.h"

typedef struct
{
  char *name;
  CmTbPrefValue value;
  gsize start, end;             /* the statement: its keyword .. after its ';' */
  gsize value_start, value_end; /* the value's tokens */
  gboolean user;                /* user_pref (not pref, sticky_pref, lockPref) */
} Stmt;

struct _CmTbPrefs
{
  GString *text;
  GPtrArray *stmts; /* Stmt*, in file order */
  GHashTable *last; /* name -> its last Stmt* (the one that counts) */
  char *filename;   /* for errors */
};

static void
stmt_free (Stmt *s)
{
  g_free (s->name);
  cm_tb_pref_value_clear (&s->value);
  g_free (s);
}

/* ---- lexer ---- */

typedef enum
{
  TOK_EOF,
  TOK_CHAR, /* ( ) , ; + - */
  TOK_WORD, /* user_pref, pref, sticky_pref, lockPref, true, false */
  TOK_STRING,
  TOK_INT,
} TokKind;

typedef struct
{
  const char *p;
  gsize len, i;
  guint line;
  /* the last token */
  TokKind kind;
  char ch;
  gsize start;
  GString *str;
  guint64 num;
  const char *err; /* lexing error, static */
  guint err_line;
} Lexer;

static gboolean
is_word_char (char c)
{
  return g_ascii_isalpha (c) || c == '_';
}

static int
hexval (char c)
{
  return g_ascii_isxdigit (c) ? g_ascii_xdigit_value (c) : -1;
}

/* @n hex digits at lx->i, or -1. */
static gint32
read_hex (Lexer *lx, int n)
{
  gint32 v = 0;
  for (int k = 0; k < n; k++)
    {
      int d = lx->i < lx->len ? hexval (lx->p[lx->i]) : -1;
      if (d < 0)
        return -1;
      v = v * 16 + d;
      lx->i++;
    }
  return v;
}

static void
append_utf8 (GString *s, gunichar c)
{
  char buf[8];
  g_string_append_len (s, buf, g_unichar_to_utf8 (c, buf));
}

/* One escape after a backslash; FALSE with lx->err. */
static gboolean
lex_escape (Lexer *lx)
{
  char c = lx->i < lx->len ? lx->p[lx->i++] : '\0';
  gint32 u, lo;

  switch (c)
    {
    case '"':
    case '\'':
    case '\\': g_string_append_c (lx->str, c); return TRUE;
    case 'n': g_string_append_c (lx->str, '\n'); return TRUE;
    case 'r': g_string_append_c (lx->str, '\r'); return TRUE;
    case 'x':
      if ((u = read_hex (lx, 2)) <= 0)
        return lx->err = "a \\x escape needs two hex digits and may not be \\x00", FALSE;
      g_string_append_c (lx->str, (char)u);
      return TRUE;
    case 'u':
      if ((u = read_hex (lx, 4)) <= 0)
        return lx->err = "a \\u escape needs four hex digits and may not be \\u0000", FALSE;
      if (u >= 0xDC00 && u <= 0xDFFF)
        return lx->err = "a \\u escape holds a low surrogate without a high one", FALSE;
      if (u >= 0xD800 && u <= 0xDBFF)
        {
          if (lx->i + 1 >= lx->len || lx->p[lx->i] != '\\' || lx->p[lx->i + 1] != 'u')
            return lx->err = "a high surrogate \\u escape must be followed by a low one", FALSE;
          lx->i += 2;
          lo = read_hex (lx, 4);
          if (lo < 0xDC00 || lo > 0xDFFF)
            return lx->err = "a high surrogate \\u escape must be followed by a low one", FALSE;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
      append_utf8 (lx->str, (gunichar)u);
      return TRUE;
    default: return lx->err = "unknown escape sequence in a string", FALSE;
    }
}

static gboolean
lex_string (Lexer *lx, char quote)
{
  guint start_line = lx->line;

  g_string_truncate (lx->str, 0);
  for (;;)
    {
      char c;
      if (lx->i >= lx->len)
        {
          lx->err_line = start_line;
          return lx->err = "unterminated string", FALSE;
        }
      c = lx->p[lx->i++];
      if (c == quote)
        return TRUE;
      if (c == '\\')
        {
          if (!lex_escape (lx))
            return FALSE;
          continue;
        }
      if (c == '\0')
        return lx->err = "a NUL byte inside a string", FALSE;
      if (c == '\n' || (c == '\r' && (lx->i >= lx->len || lx->p[lx->i] != '\n')))
        lx->line++;
      g_string_append_c (lx->str, c);
    }
}

/* Skip blanks and comments; FALSE with lx->err for an unterminated comment. */
static gboolean
skip_space (Lexer *lx)
{
  while (lx->i < lx->len)
    {
      char c = lx->p[lx->i];
      if (c == '\n' || (c == '\r' && (lx->i + 1 >= lx->len || lx->p[lx->i + 1] != '\n')))
        lx->line++, lx->i++;
      else if (c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r')
        lx->i++;
      else if (c == '#' || (c == '/' && lx->i + 1 < lx->len && lx->p[lx->i + 1] == '/'))
        while (lx->i < lx->len && lx->p[lx->i] != '\n' && lx->p[lx->i] != '\r')
          lx->i++;
      else if (c == '/' && lx->i + 1 < lx->len && lx->p[lx->i + 1] == '*')
        {
          guint start_line = lx->line;
          lx->i += 2;
          for (;;)
            {
              if (lx->i + 1 >= lx->len)
                {
                  lx->err_line = start_line;
                  return lx->err = "unterminated /* comment", FALSE;
                }
              if (lx->p[lx->i] == '*' && lx->p[lx->i + 1] == '/')
                break;
              if (lx->p[lx->i] == '\n' || (lx->p[lx->i] == '\r' && lx->p[lx->i + 1] != '\n'))
                lx->line++;
              lx->i++;
            }
          lx->i += 2;
        }
      else
        return TRUE;
    }
  return TRUE;
}

/* The next token into lx; FALSE with lx->err. */
static gboolean
lex (Lexer *lx)
{
  char c;

  lx->err_line = 0;
  if (!skip_space (lx))
    return FALSE;
  lx->start = lx->i;
  if (lx->i >= lx->len)
    return lx->kind = TOK_EOF, TRUE;
  c = lx->p[lx->i++];
  if (c != '\0' && strchr ("(),;+-", c))
    return lx->kind = TOK_CHAR, lx->ch = c, TRUE;
  if (c == '"' || c == '\'')
    return lx->kind = TOK_STRING, lex_string (lx, c);
  if (is_word_char (c))
    {
      while (lx->i < lx->len && is_word_char (lx->p[lx->i]))
        lx->i++;
      return lx->kind = TOK_WORD, TRUE;
    }
  if (g_ascii_isdigit (c))
    {
      lx->num = (guint64)(c - '0');
      while (lx->i < lx->len && g_ascii_isdigit (lx->p[lx->i]))
        {
          lx->num = lx->num * 10 + (guint64)(lx->p[lx->i++] - '0');
          if (lx->num > G_MAXUINT32)
            return lx->err = "integer literal overflowed", FALSE;
        }
      if (lx->i < lx->len && is_word_char (lx->p[lx->i]))
        return lx->err = "a letter right after a number", FALSE;
      return lx->kind = TOK_INT, TRUE;
    }
  if (c == '\0')
    return lx->err = "a NUL byte", FALSE;
  return lx->err = "unexpected character", FALSE;
}

static gboolean
word_is (Lexer *lx, const char *w)
{
  gsize n = strlen (w);
  return lx->kind == TOK_WORD && lx->i - lx->start == n && memcmp (lx->p + lx->start, w, n) == 0;
}

static gboolean
char_is (Lexer *lx, char c)
{
  return lx->kind == TOK_CHAR && lx->ch == c;
}

/* ---- parser ---- */

/* One statement after its keyword; FALSE with *@what (static) on a syntax error. */
static gboolean
parse_stmt (Lexer *lx, Stmt *st, const char **what)
{
  gboolean neg = FALSE;

  if (!lex (lx) || !char_is (lx, '('))
    return *what = "expected '(' after the pref keyword", FALSE;
  if (!lex (lx) || lx->kind != TOK_STRING)
    return *what = "expected the pref name (a string) after '('", FALSE;
  st->name = g_strndup (lx->str->str, lx->str->len);
  if (!lex (lx) || !char_is (lx, ','))
    return *what = "expected ',' after the pref name", FALSE;
  if (!lex (lx))
    return *what = "expected a value after ','", FALSE;
  st->value_start = lx->start;
  if (char_is (lx, '-') || char_is (lx, '+'))
    {
      neg = lx->ch == '-';
      if (!lex (lx) || lx->kind != TOK_INT)
        return *what = "expected a number after the sign", FALSE;
    }
  if (lx->kind == TOK_INT)
    {
      if (lx->num > (guint64)G_MAXINT32 + (neg ? 1 : 0))
        return *what = "integer literal overflowed", FALSE;
      st->value.type = CM_TB_PREF_INT;
      st->value.integer = neg ? (gint32)(-(gint64)lx->num) : (gint32)lx->num;
    }
  else if (word_is (lx, "true") || word_is (lx, "false"))
    {
      st->value.type = CM_TB_PREF_BOOL;
      st->value.boolean = word_is (lx, "true");
    }
  else if (lx->kind == TOK_STRING)
    {
      st->value.type = CM_TB_PREF_STRING;
      st->value.string = g_strndup (lx->str->str, lx->str->len);
    }
  else
    return *what = "expected a value (string, number, true or false) after ','", FALSE;
  st->value_end = lx->i;
  if (!lex (lx) || !char_is (lx, ')'))
    return *what = "expected ')' after the value", FALSE;
  if (!lex (lx) || !char_is (lx, ';'))
    return *what = "expected ';' after ')'", FALSE;
  st->end = lx->i;
  return TRUE;
}

static gboolean
parse_into (CmTbPrefs *prefs, GError **error)
{
  Lexer lx = { .p = prefs->text->str, .len = prefs->text->len, .line = 1 };
  g_autoptr (GPtrArray) stmts = g_ptr_array_new_with_free_func ((GDestroyNotify)stmt_free);
  g_autoptr (GString) str = g_string_new (NULL);
  const char *what = NULL;
  guint line = 1;

  lx.str = str;
  for (;;)
    {
      Stmt *st;
      if (!lex (&lx))
        break;
      if (lx.kind == TOK_EOF)
        {
          g_ptr_array_unref (prefs->stmts);
          prefs->stmts = g_steal_pointer (&stmts);
          g_hash_table_remove_all (prefs->last);
          for (guint i = 0; i < prefs->stmts->len; i++)
            {
              Stmt *s = g_ptr_array_index (prefs->stmts, i);
              g_hash_table_insert (prefs->last, s->name, s);
            }
          return TRUE;
        }
      line = lx.line;
      if (!(word_is (&lx, "user_pref") || word_is (&lx, "pref") || word_is (&lx, "sticky_pref")
            || word_is (&lx, "lockPref")))
        {
          what = "expected user_pref(...) here";
          break;
        }
      st = g_new0 (Stmt, 1);
      st->start = lx.start;
      st->user = word_is (&lx, "user_pref");
      g_ptr_array_add (stmts, st);
      if (!parse_stmt (&lx, st, &what))
        break;
    }
  if (lx.err)
    what = lx.err, line = lx.err_line ? lx.err_line : lx.line;
  else
    line = lx.line;
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s line %u: %s; Thunderbird skips what it cannot read there, so cacmail changes "
               "nothing: correct or delete that line (with Thunderbird closed), then run this "
               "again",
               prefs->filename, line, what);
  return FALSE;
}

CmTbPrefs *
cm_tb_prefs_new (void)
{
  CmTbPrefs *prefs = g_new0 (CmTbPrefs, 1);

  prefs->text = g_string_new (NULL);
  prefs->stmts = g_ptr_array_new_with_free_func ((GDestroyNotify)stmt_free);
  prefs->last = g_hash_table_new (g_str_hash, g_str_equal);
  prefs->filename = g_strdup ("prefs.js");
  return prefs;
}

void
cm_tb_prefs_free (CmTbPrefs *prefs)
{
  if (prefs == NULL)
    return;
  g_string_free (prefs->text, TRUE);
  g_hash_table_unref (prefs->last);
  g_ptr_array_unref (prefs->stmts);
  g_free (prefs->filename);
  g_free (prefs);
}

CmTbPrefs *
cm_tb_prefs_parse (const char *text, gsize len, const char *filename, GError **error)
{
  CmTbPrefs *prefs = cm_tb_prefs_new ();

  g_string_append_len (prefs->text, text, len);
  if (filename)
    {
      g_free (prefs->filename);
      prefs->filename = g_strdup (filename);
    }
  if (!parse_into (prefs, error))
    {
      cm_tb_prefs_free (prefs);
      return NULL;
    }
  return prefs;
}

CmTbPrefs *
cm_tb_prefs_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, &local))
    {
      CmTbPrefs *prefs;
      if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot read %s: %s", path,
                       local->message);
          return NULL;
        }
      prefs = cm_tb_prefs_new ();
      g_free (prefs->filename);
      prefs->filename = g_strdup (path);
      return prefs;
    }
  return cm_tb_prefs_parse (text, len, path, error);
}

const CmTbPrefValue *
cm_tb_prefs_get (CmTbPrefs *prefs, const char *name)
{
  static const CmTbPrefValue unset = { .type = CM_TB_PREF_UNSET };
  Stmt *s = g_hash_table_lookup (prefs->last, name);
  return s ? &s->value : &unset;
}

const char *
cm_tb_prefs_get_string (CmTbPrefs *prefs, const char *name)
{
  const CmTbPrefValue *v = cm_tb_prefs_get (prefs, name);
  return v->type == CM_TB_PREF_STRING ? v->string : NULL;
}

gint32
cm_tb_prefs_get_int (CmTbPrefs *prefs, const char *name, gint32 fallback)
{
  const CmTbPrefValue *v = cm_tb_prefs_get (prefs, name);
  return v->type == CM_TB_PREF_INT ? v->integer : fallback;
}

gboolean
cm_tb_prefs_get_bool (CmTbPrefs *prefs, const char *name, gboolean fallback)
{
  const CmTbPrefValue *v = cm_tb_prefs_get (prefs, name);
  return v->type == CM_TB_PREF_BOOL ? v->boolean : fallback;
}

const char *
cm_tb_prefs_get_text (CmTbPrefs *prefs, gsize *len)
{
  if (len)
    *len = prefs->text->len;
  return prefs->text->str;
}

static gint
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

GPtrArray *
cm_tb_prefs_list_names (CmTbPrefs *prefs, const char *prefix)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key;

  g_hash_table_iter_init (&it, prefs->last);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (g_str_has_prefix (key, prefix))
      g_ptr_array_add (out, g_strdup (key));
  g_ptr_array_sort (out, by_name);
  return out;
}

/* ---- changes ---- */

/* The line ending the file uses: CRLF when its first line ends so. */
static const char *
eol_of (GString *t)
{
  const char *nl = memchr (t->str, '\n', t->len);
  return nl && nl > t->str && nl[-1] == '\r' ? "\r\n" : "\n";
}

static gsize
line_start (GString *t, gsize pos)
{
  while (pos > 0 && t->str[pos - 1] != '\n' && t->str[pos - 1] != '\r')
    pos--;
  return pos;
}

/* After the line's end (its \n, \r\n or \r), or the end of the text. */
static gsize
line_end (GString *t, gsize pos)
{
  while (pos < t->len && t->str[pos] != '\n' && t->str[pos] != '\r')
    pos++;
  if (pos < t->len && t->str[pos] == '\r')
    pos++;
  if (pos < t->len && t->str[pos] == '\n')
    pos++;
  return pos;
}

static gboolean
blank (GString *t, gsize from, gsize to)
{
  for (gsize i = from; i < to; i++)
    if (t->str[i] == '\0' || !strchr (" \t\v\f\r\n", t->str[i])) /* strchr finds a NUL */
      return FALSE;
  return TRUE;
}

/* Splice, then parse again; a change that breaks the file (it cannot) is dropped. */
static void
splice (CmTbPrefs *prefs, gsize pos, gsize len, const char *with)
{
  g_autoptr (GString) old = g_string_new_len (prefs->text->str, prefs->text->len);
  g_autoptr (GError) error = NULL;

  g_string_erase (prefs->text, pos, len);
  g_string_insert (prefs->text, pos, with);
  if (!parse_into (prefs, &error))
    {
      g_warning ("cacmail: a prefs.js change did not parse (%s); dropped", error->message);
      g_string_truncate (prefs->text, 0);
      g_string_append_len (prefs->text, old->str, old->len);
      parse_into (prefs, NULL);
    }
}

static void
remove_all (CmTbPrefs *prefs, const char *name)
{
  for (guint i = prefs->stmts->len; i-- > 0;)
    {
      Stmt *s = g_ptr_array_index (prefs->stmts, i);
      gsize ls, le;
      if (strcmp (s->name, name) != 0)
        continue;
      ls = line_start (prefs->text, s->start);
      le = line_end (prefs->text, s->end);
      if (blank (prefs->text, ls, s->start) && blank (prefs->text, s->end, le))
        splice (prefs, ls, le - ls, "");
      else
        splice (prefs, s->start, s->end - s->start, "");
      i = MIN (i, prefs->stmts->len);
    }
}

/* Where a new user_pref of @name goes: the start of the line of the first user_pref statement
 * that sorts after it (Thunderbird writes them sorted), else after the last statement's line,
 * else at the end. When the last statement's line goes on with something other than blanks (a
 * comment may open there and run over later lines), the new line goes right after the
 * statement instead. *@eol_before: a line break must come first (no line starts there);
 * *@eol_after: one must follow (the file ends without a line break there: it keeps ending so). */
static gsize
insert_point (CmTbPrefs *prefs, const char *name, gboolean *eol_before, gboolean *eol_after)
{
  GString *t = prefs->text;
  Stmt *last = NULL;
  gsize at = t->len;

  *eol_before = FALSE;
  *eol_after = TRUE;
  for (guint i = 0; i < prefs->stmts->len; i++)
    {
      Stmt *s = g_ptr_array_index (prefs->stmts, i);
      gsize ls = line_start (t, s->start);
      if (s->user && strcmp (s->name, name) > 0 && blank (t, ls, s->start))
        return ls;
      last = s;
    }
  if (last)
    {
      at = line_end (t, last->end);
      if (!blank (t, last->end, at))
        {
          *eol_before = TRUE;
          return last->end;
        }
    }
  if (at > 0 && at == t->len && t->str[at - 1] != '\n' && t->str[at - 1] != '\r')
    {
      *eol_before = TRUE;
      *eol_after = FALSE;
    }
  return at;
}

void
cm_tb_prefs_set (CmTbPrefs *prefs, const char *name, const CmTbPrefValue *value)
{
  Stmt *s = g_hash_table_lookup (prefs->last, name);
  g_autofree char *js = cm_tb_pref_value_to_js (value);

  if (value->type == CM_TB_PREF_UNSET)
    remove_all (prefs, name);
  else if (s)
    {
      if (!cm_tb_pref_value_equal (&s->value, value))
        splice (prefs, s->value_start, s->value_end - s->value_start, js);
    }
  else
    {
      CmTbPrefValue n = { .type = CM_TB_PREF_STRING, .string = (char *)name };
      g_autofree char *jsname = cm_tb_pref_value_to_js (&n);
      const char *eol = eol_of (prefs->text);
      gboolean eol_before, eol_after;
      gsize at = insert_point (prefs, name, &eol_before, &eol_after);
      g_autofree char *line = g_strdup_printf ("%suser_pref(%s, %s);%s", eol_before ? eol : "",
                                               jsname, js, eol_after ? eol : "");
      splice (prefs, at, 0, line);
    }
}

void
cm_tb_prefs_set_string (CmTbPrefs *prefs, const char *name, const char *value)
{
  CmTbPrefValue v = { .type = CM_TB_PREF_STRING, .string = (char *)value };
  cm_tb_prefs_set (prefs, name, &v);
}

void
cm_tb_prefs_set_int (CmTbPrefs *prefs, const char *name, gint32 value)
{
  CmTbPrefValue v = { .type = CM_TB_PREF_INT, .integer = value };
  cm_tb_prefs_set (prefs, name, &v);
}
