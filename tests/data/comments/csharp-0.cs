using System;

public class Prog {
    static public void Main () {
        TextGetter tg = new TextGetter();
        Console.WriteLine(tg.getText());
    }
}
